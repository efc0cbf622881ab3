using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax;

/// <summary>
/// The normalizations of q and k (README.md, "Normalization"), differentiated exactly, scale included (the authors' backward
/// treats the scale as a constant; ours does not): the max-norms by <see cref="MaxNormFunction"/>'s written-out backward (in one
/// node with the kernel where the functional call joins them: <see cref="NormalizedFastmaxFunction"/>), the squared norm by autograd.
/// </summary>
public static class FastmaxNormalizer
{
    /// <summary>
    /// Floor of the largest token norm. An all-constant input centers to zero (always so for D = 1 with
    /// mean-centering); the floor makes that give s = 0 instead of 0/0.
    /// </summary>
    public const double NormFloor = 1e-12;

    /// <summary>Floor of the largest squared norm in the authors' squared-norm variant (their constant).</summary>
    public const double SquaredNormFloor = 0.1;

    /// <summary>
    /// x [B, H, N, D] normalized per batch and head. When <paramref name="causal"/>, token n is divided by the largest
    /// norm among tokens 0..n (a running maximum) instead of over the whole sequence: the sequence-wide maximum would
    /// let a later token change every earlier output. |s| ≤ 1 holds either way, since ‖x_n‖ never exceeds its scale.
    /// <paramref name="plan"/> says whether the max-norms' per-token work may run on the CPU loops (null: libtorch ops only).
    /// </summary>
    public static Tensor Normalize(Tensor x, FastmaxNormalization normalization, bool causal = false, KernelPlan? plan = null)
    {
        switch (normalization)
        {
            case FastmaxNormalization.None:
                return x.alias();
            case FastmaxNormalization.MeanCentered:
            case FastmaxNormalization.ZeroCentered:
                return MaxNormFunction.Apply(x, normalization == FastmaxNormalization.MeanCentered, causal, plan ?? KernelPlan.TensorOps);
            case FastmaxNormalization.SquaredNorm:
                using (NewDisposeScope())
                {
                    var largestSquare = LargestSoFar(x.square().sum(-1), causal);               // [B, H, 1] or [B, H, N]
                    return (x / largestSquare.clamp_min(SquaredNormFloor).unsqueeze(-1)).MoveToOuterDisposeScope();
                }
            default:
                throw new ArgumentOutOfRangeException(nameof(normalization), normalization, "unknown normalization");
        }
    }

    /// <summary>Per-token values [B, H, N] → their maximum over the sequence [B, H, 1], or the running maximum [B, H, N].</summary>
    static Tensor LargestSoFar(Tensor perToken, bool causal) =>
        causal ? perToken.cummax(-1).values : perToken.amax(new long[] { -1 }, keepdim: true);
}
