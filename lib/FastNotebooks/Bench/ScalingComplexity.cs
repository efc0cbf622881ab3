using FastNotebooks.Attention.Fastmax.Reference;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Bench;

/// <summary>One timed Fastmax forward call: fastest and median of the repeats, milliseconds, and whether it was re-measured.</summary>
/// <param name="X">The swept quantity: D for the head-size sweep, H for the heads sweep.</param>
/// <param name="N">Sequence length.</param>
/// <param name="D">Head size.</param>
/// <param name="Heads">Heads in the call ([1, H, N, D]).</param>
/// <param name="Fastest">Fastest repeat, ms.</param>
/// <param name="Median">Median repeat, ms.</param>
/// <param name="Remeasured">True when the point was 5× off its neighbours and measured again.</param>
public sealed record ComplexityPoint(int X, int N, int D, int Heads, double Fastest, double Median, bool Remeasured);

/// <summary>A fitted log-log slope beside the paper's prediction.</summary>
/// <param name="Sweep">Which sweep ("time vs D", "time vs heads at fixed width").</param>
/// <param name="Order">Fastmax order p.</param>
/// <param name="RSquared">R² of the fit.</param>
/// <param name="ToX">Largest X fitted.</param>
/// <param name="Slope">Least-squares slope of log(fastest time) on log X over the fitted points.</param>
/// <param name="Predicted">The exponent the paper's cost formula predicts.</param>
/// <param name="FromX">Smallest X fitted.</param>
public sealed record ComplexityFit(string Sweep, int Order, double Slope, double RSquared, double Predicted, int FromX, int ToX);

/// <summary>The sizes of the two complexity sweeps of one profile.</summary>
/// <param name="N">Sequence length of the head-size sweep (large, so the O(N·D^(p+1)) term dominates per-call overhead).</param>
/// <param name="HeadDims">Head sizes D of that sweep.</param>
/// <param name="HeadsN">Sequence length of the heads sweep.</param>
/// <param name="Width">Model width C split into H heads of C/H.</param>
/// <param name="Heads">Head counts H (each divides Width).</param>
/// <param name="Repeats">Timed calls per point after the warm-up.</param>
public sealed record ComplexitySettings(int N, IReadOnlyList<int> HeadDims, int HeadsN, int Width, IReadOnlyList<int> Heads, int Repeats)
{
    public static ComplexitySettings For(Profile profile) => profile.Pick(
        smoke: new ComplexitySettings(512, new[] { 4, 8, 16 }, 256, 32, new[] { 1, 2, 4 }, 3),
        quick: new ComplexitySettings(4096, new[] { 8, 16, 24, 32, 48, 64 }, 2048, 128, new[] { 1, 2, 4, 8 }, 7),
        full: new ComplexitySettings(16384, new[] { 8, 16, 24, 32, 48, 64, 96 }, 8192, 128, new[] { 1, 2, 4, 8, 16 }, 9));
}

/// <summary>
/// FAST's cost claims beyond the length: per head O(N·D^(p+1)), so at fixed N time grows like D^(p+1) once D is large;
/// and over H heads of a model of width C, O(N·H·(C/H)^(p+1)) = O(N·C^(p+1)·H^(−p)), so at fixed C more heads are
/// cheaper, time falling like H^(−p). Unmasked Fastmax forward (factorized), one batch, float32, the fastest and the
/// median of the repeats after a warm-up (<see cref="Warm"/>); a point more than 5× off both neighbours is measured
/// again.
/// </summary>
public static class ScalingComplexity
{
    /// <summary>Time against D at fixed N (one head).</summary>
    public static IReadOnlyList<ComplexityPoint> HeadDimSweep(ComplexitySettings settings, int order) =>
        Remeasure(settings.HeadDims.Select(d => Time(d, settings.N, d, 1, order, settings.Repeats)).ToList(), settings.Repeats, order);

    /// <summary>Time against the number of heads H at fixed width C (head size C/H).</summary>
    public static IReadOnlyList<ComplexityPoint> HeadsSweep(ComplexitySettings settings, int order)
    {
        if (settings.Heads.Any(h => h < 1 || settings.Width % h != 0))
            throw new ArgumentException($"every head count must divide Width {settings.Width}; got {string.Join(", ", settings.Heads)}.", nameof(settings));
        return Remeasure(settings.Heads.Select(h => Time(h, settings.HeadsN, settings.Width / h, h, order, settings.Repeats)).ToList(), settings.Repeats, order);
    }

    /// <summary>
    /// Slope of log(fastest) on log X over the larger half of the points (at least 3) for D — the claim is asymptotic
    /// in D — and over every point for H.
    /// </summary>
    public static ComplexityFit Fit(string sweep, int order, IReadOnlyList<ComplexityPoint> points, double predicted, bool largerHalf)
    {
        var used = largerHalf ? points.Skip(Math.Max(0, Math.Min(points.Count - 3, points.Count / 2))).ToList() : points.ToList();
        var (slope, r2) = ScalingAnalysis.LogLogSlope(used.Select(p => ((double)p.X, p.Fastest)).ToList());
        return new ComplexityFit(sweep, order, slope, r2, predicted, used[0].X, used[^1].X);
    }

    static ComplexityPoint Time(int x, int n, int d, int heads, int order, int repeats, bool remeasured = false)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(7);
        long[] shape = { 1, heads, n, d };                                                    // [B, H, N, D]
        var (q, k, v) = (randn(shape, generator: generator), randn(shape, generator: generator), randn(shape, generator: generator));
        var options = new FastmaxOptions { Order = order, Algorithm = FastmaxAlgorithm.Factorized };   // the paper's linear-time form, at every size
        Action call = () => { using var noGrad = no_grad(); using var o = FastmaxFunctional.Attention(q, k, v, options); };
        Warm(call);
        var samples = Timing.Samples(call, repeats, warmup: 0);
        return new ComplexityPoint(x, n, d, heads, samples.Min(), Timing.Median(samples), remeasured);
    }

    /// <summary>
    /// Calls until at least <paramref name="minimumCalls"/> calls and <paramref name="minimumMs"/> have passed, so the timed
    /// calls run optimized code: a short call is repeated hundreds of times, past tiered compilation's 30-call threshold
    /// and its background re-JIT; a long call spends its time in kernel loops, which on-stack replacement moves to
    /// optimized code within the first calls.
    /// </summary>
    public static void Warm(Action call, int minimumCalls = 3, double minimumMs = 300)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < minimumCalls || clock.Elapsed.TotalMilliseconds < minimumMs; i++)
        {
            call();
            if (i > 10_000) break;
        }
    }

    static List<ComplexityPoint> Remeasure(List<ComplexityPoint> points, int repeats, int order)
    {
        for (int i = 0; i < points.Count; i++)
            if (IsOutlier(points, i))
            {
                var p = points[i];
                var again = Time(p.X, p.N, p.D, p.Heads, order, repeats, remeasured: true);
                points[i] = again.Fastest < p.Fastest ? again : p with { Remeasured = true };
            }
        return points;
    }

    /// <summary>True when point i's fastest time is more than 5× off (either way) every neighbour it has.</summary>
    public static bool IsOutlier(IReadOnlyList<ComplexityPoint> points, int i)
    {
        static bool Off(double a, double b) => a > 5 * b || b > 5 * a;
        var neighbours = new[] { i - 1, i + 1 }.Where(j => j >= 0 && j < points.Count).ToList();
        return neighbours.Count > 0 && neighbours.All(j => Off(points[i].Fastest, points[j].Fastest));
    }
}
