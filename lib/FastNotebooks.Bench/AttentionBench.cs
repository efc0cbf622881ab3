using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Softmax;
using FastNotebooks.Verification;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.Reference;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Bench;

/// <summary>
/// One measured implementation on one case. Times in milliseconds: the fastest of the repeats (what ratios, GFLOP/s and
/// targets use: on a shared machine the least disturbed run) and their median; null where not run. <see cref="Paired"/>: for the
/// cases of the FMA-peak fraction targets on one thread, the forward timed again alternately with the peak (<see cref="FmaPeak.Paired"/>).
/// </summary>
public sealed record BenchRow(
    string Implementation, int N, int D, int Order, bool Causal, int BatchHeads,
    double ForwardMs, double? ForwardBackwardMs, double Gflops, double FractionOfGemm, double? PeakGrowthMb, double? SpeedupOverSoftmax,
    double ForwardMedianMs, double? ForwardBackwardMedianMs, PairedRate? Paired = null);

/// <summary>A correctness re-check inside the run: Fastmax against the dense reference, output and gradients.</summary>
public sealed record CheckRow(string Case, double OutputRelativeError, double GradientRelativeError, bool Passed);

/// <summary>Times Fastmax, libtorch SDPA and the dense reference on the cases of a profile (forward, forward + backward, memory).</summary>
public sealed class AttentionBench(BenchProfile profile, double gemmGflops, Action<string>? log = null)
{
    /// <summary>Fastmax backward is timed up to this length (the 65536-token causal case is a memory check).</summary>
    const int BackwardMaxN = 16384;

    /// <summary>
    /// Cases faster than the profile's repeats fill are repeated until their samples add up to this (at most
    /// <see cref="MaximumRepeats"/> times): <see cref="Timing.BenchSampleBudgetMs"/>.
    /// </summary>
    public const double SampleBudgetMs = Timing.BenchSampleBudgetMs;
    public const int MaximumRepeats = Timing.BenchMaximumRepeats;

    /// <summary>SDPA runs only where B·H·N² stays below this (it is O(N²); larger cases would dominate the run).</summary>
    const double SoftmaxMaxWork = 16384.0 * 16384;

    public List<BenchRow> Run()
    {
        var rows = new List<BenchRow>();
        // Peak memory is measured after all timings: each measurement hands the C heap's free pages back, and
        // for many calls after that the allocator keeps landing on released pages, which would slow the cases timed next.
        var memory = new List<(int Row, BenchCase Case, Func<Tensor, Tensor, Tensor, Tensor> Attention)>();
        foreach (var c in profile.Cases)
        {
            log?.Invoke(c.ToString());
            using var scope = NewDisposeScope();
            var (q, k, v) = Inputs(c);
            var options = new FastmaxOptions { Order = c.Order, Causal = c.Causal };
            double fastmaxFlops = c.BatchHeads * FlopCounts.FastmaxForward(c.N, c.D, c.Dv, c.Order);
            double softmaxFlops = c.BatchHeads * FlopCounts.SoftmaxForward(c.N, c.D, c.Causal);
            int repeats = c.N >= 65536 ? 1 : profile.Repeats;

            bool backward = TimesBackward(profile, c);
            Func<Tensor, Tensor, Tensor, Tensor> fastmaxCall = (a, b, d) => FastmaxFunctional.Attention(a, b, d, options);
            var fastmax = Measure(fastmaxCall, q, k, v, repeats, backward);
            // Right after the case's own repeats, before SDPA's and any memory measurement leave the C heap in another state; the peak
            // measured minutes later, after those, meets a clock the kernels may not have met (PERF.md, "The peak beside the kernel").
            var paired = get_num_threads() == 1 && ModelBench.FractionTarget(c.N, c.D, c.Order, c.Causal, c.BatchHeads)
                ? FmaPeak.Paired(() => { using var guard = no_grad(); using var o = fastmaxCall(q, k, v); }, fastmaxFlops)
                : null;
            BenchRow? softmax = null;
            Func<Tensor, Tensor, Tensor, Tensor>? softmaxCall = null;
            if (c.N <= profile.SoftmaxMaxN && (double)c.BatchHeads * c.N * c.N <= SoftmaxMaxWork)
            {
                softmaxCall = (a, b, d) => SoftmaxAttention.Attention(a, b, d, c.Causal);
                softmax = Row("sdpa", c, Measure(softmaxCall, q, k, v, repeats, backward: true), softmaxFlops, null);
            }
            memory.Add((rows.Count, c, fastmaxCall));
            rows.Add(Row("fastmax", c, fastmax, fastmaxFlops, softmax is null ? null : softmax.ForwardMs / fastmax.Forward) with { Paired = paired });
            if (softmax is not null)
            {
                memory.Add((rows.Count, c, softmaxCall!));
                rows.Add(softmax);
            }
            if (c.N <= profile.DenseMaxN && c.BatchHeads == 1)
            {
                Func<Tensor, Tensor, Tensor, Tensor> denseCall = (a, b, d) => FastmaxDense.Attention(a, b, d, options);
                memory.Add((rows.Count, c, denseCall));
                rows.Add(Row("dense", c, Measure(denseCall, q, k, v, repeats, backward: true), fastmaxFlops, null));
            }
        }
        // The same function on the other backends, chosen by option, timed after all the cases above: their large
        // allocations change the C heap's state, which slowed the next case timed in an earlier order of the bench.
        foreach (var c in profile.Cases.Where(c => c.Order == 2 && c.N == 4096 && c.BatchHeads == 1))
        {
            log?.Invoke($"{c} on the other backends");
            using var scope = NewDisposeScope();
            var (q, k, v) = Inputs(c);
            var options = new FastmaxOptions { Order = c.Order, Causal = c.Causal };
            double fastmaxFlops = c.BatchHeads * FlopCounts.FastmaxForward(c.N, c.D, c.Dv, c.Order);
            bool backward = c.N <= BackwardMaxN;
            foreach (var (name, backend) in new[] { ("fastmax-tensor-ops", FastmaxBackend.TensorOps), ("fastmax-reference", FastmaxBackend.Reference) })
            {
                var backendOptions = options with { Backend = backend };
                Func<Tensor, Tensor, Tensor, Tensor> backendCall = (a, b, d) => FastmaxFunctional.Attention(a, b, d, backendOptions);
                memory.Add((rows.Count, c, backendCall));
                rows.Add(Row(name, c, Measure(backendCall, q, k, v, profile.Repeats, backward), fastmaxFlops, null));
            }
        }
        foreach (var (row, c, attention) in memory)
        {
            using var scope = NewDisposeScope();
            var (q, k, v) = Inputs(c);
            using (no_grad())
                rows[row] = rows[row] with { PeakGrowthMb = ProcessMemory.PeakGrowth(() => { using var o = attention(q, k, v); }) / (1024.0 * 1024.0) };
        }
        return rows;
    }

    /// <summary>Whether a case's forward + backward is timed too: up to N = 16384, and with several heads in the full profile only.</summary>
    internal static bool TimesBackward(BenchProfile profile, BenchCase c) => c.N <= BackwardMaxN && (c.BatchHeads == 1 || profile.Name == "full");

    /// <summary>The case's q, k, v, the same for every implementation and every call.</summary>
    static (Tensor Q, Tensor K, Tensor V) Inputs(BenchCase c)
    {
        var generator = new Generator(17);
        long[] shape = { c.Batch, c.Heads, c.N, c.D };
        return (randn(shape, generator: generator), randn(shape, generator: generator), randn(shape, generator: generator));
    }

    BenchRow Row(string name, BenchCase c, Measured m, double flops, double? speedup)
    {
        double gflops = flops / (m.Forward * 1e6);
        return new BenchRow(name, c.N, c.D, c.Order, c.Causal, c.BatchHeads, m.Forward, m.ForwardBackward, gflops, gflops / gemmGflops, null, speedup,
            m.ForwardMedian, m.ForwardBackwardMedian);
    }

    /// <summary>Fastest and median times of the forward and of forward + backward.</summary>
    sealed record Measured(double Forward, double ForwardMedian, double? ForwardBackward, double? ForwardBackwardMedian);

    /// <summary>
    /// The forward alone (no autograd) and, when <paramref name="backward"/>, forward + backward (<see cref="ForwardBackward"/>): with both, one call of each per
    /// round, the order swapped every round, so their ratio (fb/f, a target) compares calls made under the same load on a
    /// shared machine. At least <paramref name="repeats"/> rounds, more while the forwards add up to under
    /// <see cref="SampleBudgetMs"/> (at most <see cref="MaximumRepeats"/>), after one untimed call of each.
    /// </summary>
    static Measured Measure(Func<Tensor, Tensor, Tensor, Tensor> attention, Tensor q, Tensor k, Tensor v, int repeats, bool backward)
    {
        Action forwardCall = () => { using var guard = no_grad(); using var o = attention(q, k, v); };
        if (!backward)
        {
            var alone = Timing.BenchSamples(forwardCall, repeats);
            return new Measured(alone.Min(), Timing.Median(alone), null, null);
        }
        using var scope = NewDisposeScope();
        var inputs = new[] { q.detach().requires_grad_(), k.detach().requires_grad_(), v.detach().requires_grad_() };
        var weights = randn_like(q.narrow(-1, 0, v.shape[^1]));
        Action bothCall = () => ForwardBackward.Run(attention, inputs, weights);
        var (forward, both) = (new List<double>(), new List<double>());
        forwardCall();
        bothCall();
        for (int round = 0; forward.Count < repeats || (forward.Count < MaximumRepeats && forward.Sum() < SampleBudgetMs); round++)
        {
            double f, fb;
            if (round % 2 == 0) { f = Timing.Samples(forwardCall, 1, 0)[0]; fb = Timing.Samples(bothCall, 1, 0)[0]; }
            else { fb = Timing.Samples(bothCall, 1, 0)[0]; f = Timing.Samples(forwardCall, 1, 0)[0]; }
            forward.Add(f);
            both.Add(fb);
        }
        return new Measured(forward.Min(), Timing.Median(forward), both.Min(), Timing.Median(both));
    }

    /// <summary>
    /// Fastmax against the dense reference at small N (several chunks, odd D), output and dq, dk, dv: float64 (tight), and
    /// float32 (loose; where the CPU has AVX-512 its GEMMs run on <see cref="SimdGemm"/>'s tiles, the reference on libtorch's).
    /// </summary>
    public static List<CheckRow> CheckCorrectness()
    {
        var rows = new List<CheckRow>();
        foreach (var dtype in new[] { ScalarType.Float64, ScalarType.Float32 })
        foreach (int order in new[] { 1, 2 })
            foreach (bool causal in new[] { false, true })
                foreach (int d in new[] { 7, 32 })
                {
                    using var scope = NewDisposeScope();
                    var options = new FastmaxOptions { Order = order, Causal = causal, ChunkSize = 64 };
                    var generator = new Generator(5);
                    long[] shape = { 2, 2, 257, d };
                    var inputs = Enumerable.Range(0, 3).Select(_ => randn(shape, dtype: dtype, generator: generator).requires_grad_()).ToArray();
                    var weights = randn(shape, dtype: dtype, generator: generator);
                    Tensor[] Run(Func<Tensor, Tensor, Tensor, Tensor> f)
                    {
                        var o = f(inputs[0], inputs[1], inputs[2]);
                        var grads = autograd.grad(new[] { (o * weights).sum() }, inputs);
                        return new[] { o.detach(), grads[0], grads[1], grads[2] };
                    }
                    var fast = Run((a, b, c) => FastmaxFunctional.Attention(a, b, c, options));
                    var dense = Run((a, b, c) => FastmaxDense.Attention(a, b, c, options));
                    var output = ErrorReport.Of("o", fast[0], dense[0]);
                    var gradient = Enumerable.Range(1, 3).Select(i => ErrorReport.Of("grad", fast[i], dense[i]).RelativeError).Max();
                    bool float64 = dtype == ScalarType.Float64;
                    bool passed = !output.HasNaN && output.RelativeError < (float64 ? 1e-10 : 1e-5) && gradient < (float64 ? 1e-8 : 1e-4);
                    rows.Add(new CheckRow($"N=257 D={d} p={order}{(causal ? " causal" : "")} chunk=64, {(float64 ? "float64" : "float32")}", output.RelativeError, gradient, passed));
                }
        return rows;
    }
}
