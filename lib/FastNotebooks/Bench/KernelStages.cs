using System.Diagnostics;
using FastNotebooks.Attention.Fastmax;
using static TorchSharp.torch;

namespace FastNotebooks.Bench;

/// <summary>
/// One stage of a profiled kernel pass. <see cref="Pass"/> is "forward" or "backward" (the kernel through
/// <see cref="FastmaxDispatch"/> on normalized inputs) or "entry point" (what the functional call adds around the kernel:
/// normalization and its gradient, the autograd node). Times in milliseconds; <see cref="Share"/> is of the pass's total;
/// GFLOP/s only for the pieces that are products (the flops <see cref="StageClock"/> counts).
/// </summary>
public sealed record StageRow(string Case, string Pass, string Stage, long Calls, double Ms, double Share, double? Gflops, double? FractionOfPeak);

/// <summary>
/// Where a Fastmax call's time goes, piece by piece: the kernel's forward and backward run with a
/// <see cref="StageClock"/> on their <see cref="KernelPlan"/>, the repeat with the fastest total kept (the least disturbed).
/// The rest of each pass (joining chunks and head groups, weighting and copying the states)
/// is its total less the pieces; what the entry point adds is the median difference between the functional call and the kernel,
/// run back to back in each round.
/// </summary>
public static class KernelStages
{
    /// <summary>The stage name of a pass's time outside the plan's pieces.</summary>
    public const string Outside = "the rest (joins, weights, copies)";

    /// <summary>
    /// The median over rounds of <paramref name="whole"/>'s time less <paramref name="part"/>'s, the two run back to back in each
    /// round (order swapped every round) after one untimed run each; and <paramref name="whole"/>'s median time.
    /// </summary>
    static (double Difference, double Whole) PairedDifference(Action whole, Action part, int rounds)
    {
        whole();
        part();
        var differences = new double[rounds];
        var wholes = new double[rounds];
        for (int i = 0; i < rounds; i++)
        {
            double Time(Action action) { long started = Stopwatch.GetTimestamp(); action(); return Stopwatch.GetElapsedTime(started).TotalMilliseconds; }
            double w, p;
            if (i % 2 == 0) { w = Time(whole); p = Time(part); }
            else { p = Time(part); w = Time(whole); }
            (differences[i], wholes[i]) = (w - p, w);
        }
        return (Timing.Median(differences), Timing.Median(wholes));
    }

    /// <summary>
    /// Profiles <paramref name="heads"/> heads (B = 1) of N tokens, head size D, order p, on the CPU backend with the default
    /// chunk, float32, on <paramref name="threads"/> libtorch threads (restored after). <paramref name="peak"/> (GFLOP/s of
    /// one thread; with several, each piece's rate is per thread) turns each product's rate into a fraction; null leaves the fractions out. With several threads the
    /// pieces add the time of every thread (head groups run side by side), so "the rest" is the pass's wall time less their
    /// sum divided by the thread count.
    /// </summary>
    public static List<StageRow> Measure(int n, int d, int order, bool causal, double? peak, int repeats = 9, int heads = 1, int threads = 1)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "needs at least one token");
        if (repeats < 1) throw new ArgumentOutOfRangeException(nameof(repeats), repeats, "needs at least one repeat");
        if (heads < 1) throw new ArgumentOutOfRangeException(nameof(heads), heads, "needs at least one head");
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), threads, "needs at least one thread");
        int threadsBefore = get_num_threads();
        set_num_threads(threads);
        try { return Profile(n, d, order, causal, peak, repeats, heads, threads); }
        finally { set_num_threads(threadsBefore); }
    }

    static List<StageRow> Profile(int n, int d, int order, bool causal, double? peak, int repeats, int heads, int threads)
    {
        string name = $"N={n} D={d} p={order}{(causal ? " causal" : "")}{(heads > 1 ? $" B·H={heads}" : "")}{(threads > 1 ? $", {threads} threads" : "")}";
        using var scope = NewDisposeScope();
        var options = new FastmaxOptions { Order = order, Causal = causal, Backend = FastmaxBackend.Cpu };
        var a = options.ResolvedCoefficients();
        int chunk = options.ResolvedChunkSize(d);
        var generator = new Generator(31);
        long[] shape = { 1, heads, n, d };
        var (q, k, v) = (randn(shape, generator: generator), randn(shape, generator: generator), randn(shape, generator: generator));
        var weights = randn(shape, generator: generator);
        var clock = new StageClock();
        var plan = FastmaxDispatch.Plan(FastmaxBackend.Cpu).WithClock(clock);
        Tensor qHat, kHat;
        using (no_grad())
        {
            qHat = FastmaxNormalizer.Normalize(q, options.Normalization, causal).contiguous();
            kHat = FastmaxNormalizer.Normalize(k, options.Normalization, causal).contiguous();
        }

        (double Total, IReadOnlyList<StageTime> Stages) Fastest(Action pass)
        {
            (double Total, IReadOnlyList<StageTime> Stages) best = (double.PositiveInfinity, Array.Empty<StageTime>());
            for (int i = 0; i <= repeats; i++)       // the first run warms up and is not kept
            {
                clock.Reset();
                long started = Stopwatch.GetTimestamp();
                pass();
                double ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (i > 0 && ms < best.Total) best = (ms, clock.Stages);
            }
            return best;
        }

        var rows = new List<StageRow>();
        void Add(string pass, (double Total, IReadOnlyList<StageTime> Stages) measured)
        {
            foreach (var s in measured.Stages)
            {
                double? gflops = s.Flops > 0 ? s.Flops / (s.Milliseconds * 1e6) : null;
                rows.Add(new(name, pass, s.Stage, s.Calls, s.Milliseconds, s.Milliseconds / measured.Total, gflops, gflops / peak));
            }
            double outside = measured.Total - measured.Stages.Sum(s => s.Milliseconds) / threads;
            rows.Add(new(name, pass, Outside, 1, outside, outside / measured.Total, null, null));
            rows.Add(new(name, pass, "total", 1, measured.Total, 1, null, null));
        }

        Tensor o, g;
        Tensor? keyState;
        using (no_grad())
        {
            (o, g, keyState) = FastmaxDispatch.Forward(FastmaxBackend.Cpu, KernelPlan.Cpu, qHat, kHat, v, a, causal, chunk, forBackward: true);
            var forward = Fastest(() => { using var step = NewDisposeScope(); FastmaxDispatch.Forward(FastmaxBackend.Cpu, plan, qHat, kHat, v, a, causal, chunk); });
            Add("forward", forward);
            var backward = Fastest(() => { using var step = NewDisposeScope(); FastmaxDispatch.Backward(FastmaxBackend.Cpu, plan, qHat, kHat, v, o, g, weights, a, causal, chunk, keyState); });
            Add("backward", backward);

            // The entry point against the kernel, call by call in the same rounds (the median of the per-round differences),
            // so a drift in the machine's speed between two separate measurements does not show up as time of its own.
            Action kernelForward = () => { using var step = NewDisposeScope(); FastmaxDispatch.Forward(FastmaxBackend.Cpu, KernelPlan.Cpu, qHat, kHat, v, a, causal, chunk); };
            Action kernelBoth = () =>
            {
                using var step = NewDisposeScope();
                var (o1, g1, s1) = FastmaxDispatch.Forward(FastmaxBackend.Cpu, KernelPlan.Cpu, qHat, kHat, v, a, causal, chunk, forBackward: true);
                FastmaxDispatch.Backward(FastmaxBackend.Cpu, KernelPlan.Cpu, qHat, kHat, v, o1, g1, weights, a, causal, chunk, s1);
            };
            var leaves = new[] { q, k, v }.Select(t => t.detach().requires_grad_()).ToArray();
            Action entryForward = () => { using var out1 = FastmaxFunctional.Attention(q, k, v, options); };
            Action entryBoth = () =>
            {
                using var enabled = enable_grad();
                ForwardBackward.Run((a, b, c) => FastmaxFunctional.Attention(a, b, c, options), leaves, weights);
            };
            var (aroundForward, entryForwardMs) = PairedDifference(entryForward, kernelForward, repeats);
            rows.Add(new(name, "entry point", "normalization (its largest norms where folded), autograd node (forward)", 1, aroundForward, aroundForward / entryForwardMs, null, null));
            var (aroundBoth, entryBothMs) = PairedDifference(entryBoth, kernelBoth, repeats);
            rows.Add(new(name, "entry point", "normalization (or its largest norms where folded) and its gradient, autograd (forward + backward)", 1, aroundBoth, aroundBoth / entryBothMs, null, null));
            rows.Add(new(name, "entry point", "total forward + backward", 1, entryBothMs, 1, null, null));
        }
        return rows;
    }
}
