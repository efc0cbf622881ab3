using System.Globalization;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Softmax;
using FastNotebooks.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Bench;

/// <summary>The attention kernels the scaling sweep compares (FAST, arXiv 2402.07901, Fig. 3).</summary>
public enum ScalingImplementation
{
    /// <summary>Fastmax of order p = 1: features of size 1 + D, O(N·D²) per head.</summary>
    Fastmax1,
    /// <summary>Fastmax of order p = 2: features of size about D²/2, O(N·D³) per head.</summary>
    Fastmax2,
    /// <summary>Softmax through libtorch's scaled_dot_product_attention, O(N²·D) per head.</summary>
    Softmax,
}

/// <summary>What one timed call does.</summary>
public enum ScalingPass
{
    /// <summary>The attention output only, without autograd.</summary>
    Forward,
    /// <summary>The output, then the gradients of a weighted sum of it with respect to q, k and v.</summary>
    ForwardBackward,
}

/// <summary>
/// The sizes of one sweep. Profiles change only these, never the code path.
/// </summary>
/// <param name="Lengths">Sequence lengths N, powers of two, ascending.</param>
/// <param name="HeadDims">Head sizes D (queries, keys and values alike) timed forward.</param>
/// <param name="BackwardHeadDims">The head sizes also timed forward + backward (a subset of <paramref name="HeadDims"/>).</param>
/// <param name="Repeats">Timed calls per point; the median is kept.</param>
/// <param name="SoftmaxBudgetBytes">
/// Softmax points whose N×N float32 score matrix would exceed this are marked over budget and not run, as the
/// paper's GPU figure marks softmax out of memory.
/// </param>
/// <param name="GemmSize">Size n of the n×n×n float32 matmul that sets the roofline.</param>
public sealed record ScalingSettings(
    IReadOnlyList<int> Lengths, IReadOnlyList<int> HeadDims, IReadOnlyList<int> BackwardHeadDims, int Repeats, long SoftmaxBudgetBytes, int GemmSize)
{
    /// <summary>
    /// smoke: N 64..512, D 8 and 16, one repeat, a 512 KiB budget (so the last softmax point is marked); quick: N 256..16384,
    /// D 8..64, a 256 MiB budget (N = 16384 would need 1 GiB of scores); full: N up to 65536 with a 4 GiB budget.
    /// </summary>
    public static ScalingSettings For(Profile profile) => profile.Pick(
        smoke: new ScalingSettings(PowersOfTwo(64, 512), new[] { 8, 16 }, new[] { 8 }, Repeats: 1, SoftmaxBudgetBytes: 512L << 10, GemmSize: 256),
        quick: new ScalingSettings(PowersOfTwo(256, 16384), new[] { 8, 16, 32, 64 }, new[] { 32 }, Repeats: 9, SoftmaxBudgetBytes: 256L << 20, GemmSize: 2048),
        full: new ScalingSettings(PowersOfTwo(256, 65536), new[] { 8, 16, 32, 64 }, new[] { 8, 16, 32, 64 }, Repeats: 5, SoftmaxBudgetBytes: 4L << 30, GemmSize: 2048));

    /// <summary>from, 2·from, …, to.</summary>
    public static int[] PowersOfTwo(int from, int to)
    {
        if (from < 1 || !int.IsPow2(from)) throw new ArgumentException($"must be a positive power of two; got {from}.", nameof(from));
        if (to < from) throw new ArgumentException($"must be at least from = {from}; got {to}.", nameof(to));
        var lengths = new List<int>();
        for (long n = from; n <= to; n *= 2) lengths.Add((int)n);
        return lengths.ToArray();
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting that cannot be swept.</summary>
    public void Validate()
    {
        if (Lengths is null || Lengths.Count == 0) throw new ArgumentException("at least one length is needed.", nameof(Lengths));
        if (Lengths.Any(n => n < 2 || !int.IsPow2(n))) throw new ArgumentException($"lengths must be powers of two ≥ 2; got {string.Join(", ", Lengths)}.", nameof(Lengths));
        if (!Lengths.Zip(Lengths.Skip(1)).All(p => p.First < p.Second)) throw new ArgumentException("lengths must be strictly ascending.", nameof(Lengths));
        if (HeadDims is null || HeadDims.Count == 0 || HeadDims.Any(d => d < 1)) throw new ArgumentException("head sizes must be positive, at least one.", nameof(HeadDims));
        if (BackwardHeadDims is null || BackwardHeadDims.Any(d => !HeadDims.Contains(d)))
            throw new ArgumentException("backward head sizes must be among the head sizes.", nameof(BackwardHeadDims));
        if (Repeats < 1) throw new ArgumentException($"must be at least 1; got {Repeats}.", nameof(Repeats));
        if (SoftmaxBudgetBytes < 1) throw new ArgumentException($"must be positive; got {SoftmaxBudgetBytes}.", nameof(SoftmaxBudgetBytes));
        if (GemmSize < 1) throw new ArgumentException($"must be positive; got {GemmSize}.", nameof(GemmSize));
    }
}

/// <summary>
/// One (implementation, pass, D, N) of the sweep, per head (B = H = 1). Over-budget softmax points are not run: their
/// measured fields are null and <see cref="NominalMilliseconds"/> places them on the chart.
/// </summary>
/// <param name="Implementation">The kernel timed.</param>
/// <param name="Pass">Forward, or forward + backward.</param>
/// <param name="D">Head size of queries, keys and values.</param>
/// <param name="N">Sequence length (queries and keys).</param>
/// <param name="Milliseconds">Median wall-clock time of one call; null when not run.</param>
/// <param name="Gflops">Achieved GFLOP/s (<see cref="FlopCounts"/>), forward only.</param>
/// <param name="PeakGrowthMb">Peak resident memory added by one call with its memory faulted in afresh, measured after all timings (<see cref="ProcessMemory"/>), MiB; null if unknown.</param>
/// <param name="ScoreMatrixMb">Softmax only: the N×N float32 score matrix of standard attention, MiB, the quantity the budget limits.</param>
/// <param name="OverBudget">True when <paramref name="ScoreMatrixMb"/> exceeds the budget and the point was skipped.</param>
/// <param name="NominalMilliseconds">Over budget only: the last measured softmax time of this D and pass scaled by (N / N_last)², a position for the mark, not a measurement.</param>
public sealed record ScalingPoint(
    ScalingImplementation Implementation, ScalingPass Pass, int D, int N,
    double? Milliseconds, double? Gflops, double? PeakGrowthMb, double? ScoreMatrixMb, bool OverBudget, double? NominalMilliseconds);

/// <summary>One shape timed the sweep's way and the bench's, back to back (<see cref="Scaling.AgreementWithBench"/>); medians in milliseconds.</summary>
public sealed record BenchAgreement(ScalingImplementation Implementation, int D, int N, double SweepMs, double BenchMs)
{
    public double SweepOverBench => SweepMs / BenchMs;
}

/// <summary>Everything one sweep measured and what follows from it.</summary>
/// <param name="Settings">The sizes swept.</param>
/// <param name="Points">Every point, in sweep order (D, then N, then pass, then implementation).</param>
/// <param name="Fits">Log-log slopes (<see cref="ScalingAnalysis.FitSlopes"/>).</param>
/// <param name="Crossovers">Where Fastmax overtakes softmax (<see cref="ScalingAnalysis.FindCrossovers"/>).</param>
/// <param name="Roofline">Fastmax's achieved rate against the GEMM (<see cref="ScalingAnalysis.RooflineFractions"/>).</param>
/// <param name="GemmGflops">The roofline: the better of two same-run GEMM measurements, before and after the sweep.</param>
/// <param name="Threads">libtorch's intra-op threads during the sweep.</param>
public sealed record ScalingResult(
    ScalingSettings Settings, IReadOnlyList<ScalingPoint> Points, IReadOnlyList<ScalingFit> Fits, IReadOnlyList<Crossover> Crossovers,
    IReadOnlyList<RooflineFraction> Roofline, double GemmGflops, int Threads);

/// <summary>
/// Figure 3 of FAST (arXiv 2402.07901) on this machine: time per attention head against N for several D, Fastmax p = 1 and
/// p = 2 against softmax, forward and (on a subset of D) forward + backward, with memory, fitted slopes, crossovers and the
/// roofline fraction (<see cref="ScalingAnalysis"/>).
/// </summary>
public static class Scaling
{
    /// <summary>Inputs are drawn from this seed, so every implementation sees the same q, k, v.</summary>
    const int Seed = 3;

    /// <summary>Runs the sweep of a profile (<see cref="ScalingSettings.For"/>); see the other overload for the arguments.</summary>
    public static ScalingResult Run(Profile profile, Action<string>? progress = null, int threads = 0) => Run(ScalingSettings.For(profile), progress, threads);

    /// <summary>
    /// Runs the sweep: for each D and each N (ascending), every implementation forward, and forward + backward where D is in
    /// <see cref="ScalingSettings.BackwardHeadDims"/>. Writes one progress line per (D, N), to the console unless
    /// <paramref name="progress"/> is given.
    /// </summary>
    /// <param name="settings">The sizes to sweep.</param>
    /// <param name="progress">Receives one line per (D, N); null writes to the console.</param>
    /// <param name="threads">
    /// libtorch intra-op threads during the sweep (restored afterwards); 0 keeps the current setting. On a busy machine one
    /// thread gives steadier times: a multi-threaded op waits for its slowest thread, and a descheduled one stalls it.
    /// </param>
    public static ScalingResult Run(ScalingSettings settings, Action<string>? progress = null, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        if (threads < 0) throw new ArgumentException($"must be 0 (keep the current setting) or positive; got {threads}.", nameof(threads));
        progress ??= Console.WriteLine;
        int previousThreads = get_num_threads();
        if (threads > 0) set_num_threads(threads);
        try { return Sweep(settings, progress); }
        finally { if (threads > 0) set_num_threads(previousThreads); }
    }

    static ScalingResult Sweep(ScalingSettings settings, Action<string> progress)
    {
        double gemmBefore = Roofline.MeasureGemmGflops(settings.GemmSize, repeats: 3);
        var points = new List<ScalingPoint>();
        foreach (int d in settings.HeadDims)
        {
            var passes = settings.BackwardHeadDims.Contains(d) ? new[] { ScalingPass.Forward, ScalingPass.ForwardBackward } : new[] { ScalingPass.Forward };
            var lastSoftmax = new Dictionary<ScalingPass, ScalingPoint>();
            foreach (int n in settings.Lengths)
            {
                var line = new List<string>();
                foreach (var pass in passes)
                    foreach (var implementation in Enum.GetValues<ScalingImplementation>())
                    {
                        Interruption.ThrowIfRequested();
                        var point = Measure(implementation, pass, d, n, settings, lastSoftmax.GetValueOrDefault(pass));
                        if (implementation == ScalingImplementation.Softmax && !point.OverBudget) lastSoftmax[pass] = point;
                        points.Add(point);
                        line.Add($"{implementation}{(pass == ScalingPass.ForwardBackward ? " fwd+bwd" : "")} " +
                            (point.Milliseconds is double ms ? ms.ToString("G3", CultureInfo.InvariantCulture) + " ms" : "over budget"));
                    }
                progress($"D={d} N={n}: {string.Join(", ", line)}");
            }
        }
        // Memory last: the measurement hands the C heap's free pages back to the kernel, and for many calls after that the
        // allocator keeps landing on released pages (about 500 page faults and 6 ms more per call of Fastmax p = 2 at D = 16,
        // N = 16384, measured), which would slow every point timed after it.
        for (int i = 0; i < points.Count; i++)
            if (!points[i].OverBudget) points[i] = points[i] with { PeakGrowthMb = PeakGrowthMb(points[i]) };
        // On a shared machine the GEMM rate drifts; the better of two measurements is the fairer bar.
        double gemm = Math.Max(gemmBefore, Roofline.MeasureGemmGflops(settings.GemmSize, repeats: 3));
        return new ScalingResult(settings, points, ScalingAnalysis.FitSlopes(points), ScalingAnalysis.FindCrossovers(points),
            ScalingAnalysis.RooflineFractions(points, gemm), gemm, get_num_threads());
    }

    /// <summary>One point's time: skipped softmax over budget; otherwise a warm-up call, then the median of the repeats.</summary>
    static ScalingPoint Measure(ScalingImplementation implementation, ScalingPass pass, int d, int n, ScalingSettings settings, ScalingPoint? lastSoftmax)
    {
        double? scoreBytes = implementation == ScalingImplementation.Softmax ? 4.0 * n * n : null;
        double? scoreMb = scoreBytes / (1 << 20);
        if (scoreBytes > settings.SoftmaxBudgetBytes)
        {
            double? nominal = lastSoftmax is { Milliseconds: double lastMs } ? lastMs * Math.Pow((double)n / lastSoftmax.N, 2) : null;
            return new ScalingPoint(implementation, pass, d, n, null, null, null, scoreMb, OverBudget: true, nominal);
        }
        using var scope = NewDisposeScope();
        double ms = SweepMedian(Call(implementation, pass, d, n), settings);
        double? gflops = pass == ScalingPass.Forward ? Flops(implementation, n, d) / (ms * 1e6) : null;
        return new ScalingPoint(implementation, pass, d, n, ms, gflops, null, scoreMb, OverBudget: false, null);
    }

    /// <summary>The sweep's time of one call: warmed up (short calls repeat until the JIT has optimized them), then the median of the repeats.</summary>
    static double SweepMedian(Action call, ScalingSettings settings)
    {
        ScalingComplexity.Warm(call, minimumCalls: 1, minimumMs: 150);
        return Timing.Median(call, settings.Repeats, warmup: 0);
    }

    /// <summary>
    /// The sweep's way of timing (<see cref="Run(ScalingSettings, Action{string}?, int)"/>) against the bench's (<see cref="Timing.BenchSamples"/>, the median of
    /// <paramref name="benchRepeats"/> calls or more) on the same calls, back to back (which goes first alternates): the Fastmax
    /// forward of both orders at the two largest head sizes and lengths of the settings. A check of the method, not of the
    /// machine: both run within seconds of each other, where a bench run from another hour differs by the machine's drift.
    /// </summary>
    public static List<BenchAgreement> AgreementWithBench(ScalingSettings settings, int threads = 0, int benchRepeats = 7)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        if (threads < 0) throw new ArgumentException($"must be 0 (keep the current setting) or positive; got {threads}.", nameof(threads));
        if (benchRepeats < 1) throw new ArgumentException($"must be at least 1; got {benchRepeats}.", nameof(benchRepeats));
        int previousThreads = get_num_threads();
        if (threads > 0) set_num_threads(threads);
        try
        {
            var rows = new List<BenchAgreement>();
            foreach (var implementation in new[] { ScalingImplementation.Fastmax1, ScalingImplementation.Fastmax2 })
                foreach (int d in settings.HeadDims.Order().TakeLast(2))
                    foreach (int n in settings.Lengths.Order().TakeLast(2))
                    {
                        Interruption.ThrowIfRequested();
                        using var scope = NewDisposeScope();
                        var call = Call(implementation, ScalingPass.Forward, d, n);
                        double sweep, bench;
                        if (rows.Count % 2 == 0) (sweep, bench) = (SweepMedian(call, settings), Timing.Median(Timing.BenchSamples(call, benchRepeats)));
                        else (bench, sweep) = (Timing.Median(Timing.BenchSamples(call, benchRepeats)), SweepMedian(call, settings));
                        rows.Add(new BenchAgreement(implementation, d, n, sweep, bench));
                    }
            return rows;
        }
        finally { if (threads > 0) set_num_threads(previousThreads); }
    }

    /// <summary>Peak resident-memory growth (MiB) of one call of the point's kernel, its memory faulted in afresh.</summary>
    static double? PeakGrowthMb(ScalingPoint point)
    {
        using var scope = NewDisposeScope();
        long? growth = ProcessMemory.PeakGrowth(Call(point.Implementation, point.Pass, point.D, point.N));
        // The kernel updates the high-water mark lazily; a reading a little below the starting RSS means no growth.
        return growth is long bytes ? Math.Max(0, bytes) / (1024.0 * 1024.0) : null;
    }

    /// <summary>One call of an implementation on one head of the seeded q, k, v [1, 1, N, D] (tensors in the caller's dispose scope).</summary>
    static Action Call(ScalingImplementation implementation, ScalingPass pass, int d, int n)
    {
        var generator = new Generator(Seed);
        long[] shape = { 1, 1, n, d }; // [B, H, N, D]: one head
        var (q, k, v) = (randn(shape, generator: generator), randn(shape, generator: generator), randn(shape, generator: generator));
        Func<Tensor, Tensor, Tensor, Tensor> attention = implementation switch
        {
            ScalingImplementation.Fastmax1 => (a, b, c) => FastmaxFunctional.Attention(a, b, c, new FastmaxOptions { Order = 1 }),
            ScalingImplementation.Fastmax2 => (a, b, c) => FastmaxFunctional.Attention(a, b, c, new FastmaxOptions { Order = 2 }),
            _ => (a, b, c) => SoftmaxAttention.Attention(a, b, c),
        };
        if (pass == ScalingPass.Forward)
            return () => { using var noGrad = no_grad(); using var o = attention(q, k, v); };
        var inputs = new[] { q.detach().requires_grad_(), k.detach().requires_grad_(), v.detach().requires_grad_() };
        var weights = randn(shape, generator: generator);
        return () => ForwardBackward.Run(attention, inputs, weights);
    }

    /// <summary>Forward flops per head as <see cref="FlopCounts"/> counts them (values of size D).</summary>
    public static double Flops(ScalingImplementation implementation, int n, int d) => implementation switch
    {
        ScalingImplementation.Fastmax1 => FlopCounts.FastmaxForward(n, d, d, 1),
        ScalingImplementation.Fastmax2 => FlopCounts.FastmaxForward(n, d, d, 2),
        _ => FlopCounts.SoftmaxForward(n, d),
    };
}
