using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax;

/// <summary>
/// The max-norm normalization folded into the unmasked order-2 kernel, for a forward that wants no gradient. Unmasked, each
/// (batch, head) slice divides every token by one number, its largest norm m: q̂·k̂ = (c_q·c_k)/(m_q·m_k) with c the centred (or
/// raw) tokens, so with s = 1/(T·m_q·m_k), f(q̂·k̂) = Σ_l a_l s^l (c_q·c_k)^l: the kernel reads q and k as they are, centres
/// each token where it builds x̃ in cache, and multiplies the weights of degree l by s^l
/// (<see cref="PackedTaylorFeatures.CentresRawInputs"/>, <see cref="PackedTaylorFeatures.SliceScale"/>). What is left of the
/// normalization is one read of q and k for m (<see cref="MaxNormLoops.LargestNorms"/>); the normalized copies of q and k are
/// never written (PERF.md, "Max-norm folded into the unmasked forward"). The same function as <see cref="FastmaxNormalizer"/> then
/// the kernel, up to float32 rounding (FoldedNormalizationTests).
/// </summary>
internal static class FoldedNormalization
{
    /// <summary>
    /// Largest norms m outside [<see cref="SmallestNorm"/>, <see cref="LargestNorm"/>] run the unfolded path instead: the float32
    /// features of c grow as m² and the weights as 1/m², which far outside this range would leave float32's exponent range
    /// (an all-constant input centres to zero and is one of these; the unfolded path floors its scale).
    /// </summary>
    public const double SmallestNorm = 1e-6, LargestNorm = 1e6;

    /// <summary>
    /// o [B, H, Nq, Dv], or null where some slice's largest norm lies outside the range above (then the caller runs the
    /// normalization and the kernel apart). The caller has checked <see cref="FastmaxDispatch.FoldsNormalization"/>.
    /// </summary>
    public static Tensor? Forward(Tensor q, Tensor k, Tensor v, FastmaxOptions options, double[] a, int chunk, KernelPlan plan)
    {
        bool centre = options.Normalization == FastmaxNormalization.MeanCentered;
        double[] mq = MaxNormLoops.LargestNorms(q, centre), mk = MaxNormLoops.LargestNorms(k, centre);
        if (mq.Concat(mk).Any(m => !(m >= SmallestNorm && m <= LargestNorm))) return null;
        var scales = mq.Zip(mk, (x, y) => 1 / (options.Temperature * x * y)).ToArray();
        using var scope = NewDisposeScope();
        var scale = tensor(scales, dtype: ScalarType.Float64).view(q.shape[0], q.shape[1], 1, 1);
        var (o, _, _) = FastmaxFactorized.ForwardKeepingState(q.contiguous(), k.contiguous(), v.contiguous(), a, chunk, plan, centre, scale);
        return o.MoveToOuterDisposeScope();
    }
}
