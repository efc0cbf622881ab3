using FastNotebooks.Attention.Fastmax;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.Reference;
using static TorchSharp.torch;

namespace FastNotebooks.Verification;

/// <summary>The four quantities a sweep point compares: the output and the three input gradients.</summary>
[Flags]
public enum KernelQuantity { None = 0, Output = 1, GradQ = 2, GradK = 4, GradV = 8 }

/// <summary>
/// One configuration's errors against the dense float64 reference: max|fast − reference| / max|reference|. A quantity
/// that is identically zero in exact arithmetic (∂L/∂q and ∂L/∂k at N = 1; ∂L/∂q, ∂L/∂k at D = 1 with centering) has no
/// relative error; it is listed in <paramref name="ExactlyZero"/> and its entry holds the kernel's largest |entry| times
/// the input scale (the unit in which the other gradients are of order one), so a kernel that is not zero there — or is
/// NaN — still shows. NaN in an entry means the kernel produced NaN; nothing here is NaN otherwise.
/// </summary>
public sealed record KernelError(
    int N, int D, int Order, bool Causal, FastmaxNormalization Normalization, double Scale, string Dtype,
    double Output, double GradQ, double GradK, double GradV, KernelQuantity ExactlyZero = KernelQuantity.None)
{
    /// <summary>The four errors, output first; NaN stays NaN.</summary>
    public IReadOnlyList<double> All => new[] { Output, GradQ, GradK, GradV };

    /// <summary>The largest of the four errors; NaN when any is NaN (never filtered out).</summary>
    public double Worst => KernelErrorSweep.MaxOf(All);

    /// <summary>A short name of the configuration, for a failed check.</summary>
    public string Case => $"N={N} D={D} p={Order} {(Causal ? "causal" : "unmasked")} {Normalization} scale={Scale:G3} {Dtype}";
}

/// <summary>
/// Fastmax (factorized / chunked, custom gradient) against the dense reference with autograd, over a grid of
/// shapes and options, in float64 and float32. Inputs are Gaussian times <c>scale</c>; gradients are of
/// L = Σ o ⊙ w for a random w.
/// </summary>
public static class KernelErrorSweep
{
    /// <summary>Reference gradients below this (times 1/scale) are roundoff of an exact zero.</summary>
    public const double ZeroGradientScale = 1e-9;

    /// <summary>
    /// The largest value, NaN when any value is NaN (LINQ's Max skips NaN; this never does), 0 for none. For tables and
    /// summaries of errors, where a NaN must show rather than vanish.
    /// </summary>
    public static double MaxOf(IEnumerable<double> values) =>
        values.Aggregate(0.0, (max, x) => double.IsNaN(max) || double.IsNaN(x) ? double.NaN : Math.Max(max, x));

    public static IEnumerable<KernelError> Run(
        IEnumerable<int>? ns = null, IEnumerable<int>? ds = null, IEnumerable<double>? scales = null, long seed = 0)
    {
        var orders = new[] { 1, 2, 3 };
        var normalizations = new[] { FastmaxNormalization.MeanCentered, FastmaxNormalization.ZeroCentered, FastmaxNormalization.None };
        foreach (var n in ns ?? new[] { 1, 7, 64, 257 })
        foreach (var d in ds ?? new[] { 1, 8, 24 })
        foreach (var scale in scales ?? new[] { 1e-3, 1.0, 1e3 })
        foreach (var order in orders)
        foreach (var normalization in normalizations)
        foreach (var causal in new[] { false, true })
        {
            // Unnormalized odd orders can divide by ~0 (f = 1 + s at s = −1); only small inputs are meaningful there.
            if (normalization == FastmaxNormalization.None && (order != 2 && scale > 1e-3 || scale > 1)) continue;
            // Zero-centered at D = 1 makes every score exactly ±1, and p = 1 has f(−1) = 0: a query whose keys all score −1
            // has no output in the definition itself (0 / 0), so there is nothing to compare.
            if (normalization == FastmaxNormalization.ZeroCentered && order == 1 && d == 1) continue;
            var options = new FastmaxOptions { Order = order, Normalization = normalization, Causal = causal, ChunkSize = 64 };
            foreach (var dtype in new[] { ScalarType.Float64, ScalarType.Float32 })
            {
                Interruption.ThrowIfRequested();
                yield return Measure(n, d, scale, options, dtype, seed++);
            }
        }
    }

    public static KernelError Measure(int n, int d, double scale, FastmaxOptions options, ScalarType dtype, long seed)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator((ulong)seed);
        var q = randn(new long[] { 1, 2, n, d }, dtype: ScalarType.Float64, generator: generator) * scale;
        var k = randn(new long[] { 1, 2, n, d }, dtype: ScalarType.Float64, generator: generator) * scale;
        var v = randn(new long[] { 1, 2, n, d }, dtype: ScalarType.Float64, generator: generator);
        var w = randn(new long[] { 1, 2, n, d }, dtype: ScalarType.Float64, generator: generator);

        var (oRef, gRef) = OutputAndGradients((a, b, c) => FastmaxDense.Attention(a, b, c, options), q, k, v, w);
        var (oFast, gFast) = OutputAndGradients((a, b, c) => FastmaxFunctional.Attention(a, b, c, options),
            q.to(dtype), k.to(dtype), v.to(dtype), w.to(dtype));
        // A quantity that is zero in exact arithmetic (N = 1; D = 1 with centering) has no relative error: it is flagged,
        // and the kernel's own largest entry (times the scale) is what is measured.
        var zero = KernelQuantity.None;
        double Error(KernelQuantity quantity, Tensor actual, Tensor expected)
        {
            if (expected.abs().max().item<double>() >= ZeroGradientScale / scale) return ErrorReport.Of(quantity.ToString(), actual, expected).RelativeError;
            zero |= quantity;
            return actual.abs().max().to(ScalarType.Float64).item<double>() * scale;   // NaN stays NaN: torch's max propagates it
        }
        double output = Error(KernelQuantity.Output, oFast, oRef), gq = Error(KernelQuantity.GradQ, gFast[0], gRef[0]);
        double gk = Error(KernelQuantity.GradK, gFast[1], gRef[1]), gv = Error(KernelQuantity.GradV, gFast[2], gRef[2]);
        return new KernelError(n, d, options.Order, options.Causal, options.Normalization, scale, dtype.ToString(), output, gq, gk, gv, zero);
    }

    static (Tensor Output, Tensor[] Gradients) OutputAndGradients(Func<Tensor, Tensor, Tensor, Tensor> attention, Tensor q, Tensor k, Tensor v, Tensor w)
    {
        var inputs = new[] { q, k, v }.Select(t => t.detach().requires_grad_()).ToArray();
        var o = attention(inputs[0], inputs[1], inputs[2]);
        var grads = autograd.grad(new[] { (o * w).sum() }, inputs);
        return (o.detach(), grads.Select(g => g.detach()).ToArray());
    }
}
