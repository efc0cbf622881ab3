using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax;

/// <summary>
/// The normalizations of q and k (README.md, "Normalization"), in differentiable tensor ops: they run
/// outside the custom autograd function, so autograd differentiates them exactly (the authors' backward
/// treats the scale as a constant; ours does not).
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

    /// <summary>x [B, H, N, D] normalized per batch and head.</summary>
    public static Tensor Normalize(Tensor x, FastmaxNormalization normalization)
    {
        if (normalization == FastmaxNormalization.None) return x.alias();
        using var scope = NewDisposeScope();
        Tensor result;
        switch (normalization)
        {
            case FastmaxNormalization.SquaredNorm:
                var largestSquare = x.square().sum(-1).amax(new long[] { -1 }, keepdim: true); // [B, H, 1]
                result = x / largestSquare.clamp_min(SquaredNormFloor).unsqueeze(-1);
                break;
            case FastmaxNormalization.MeanCentered:
            case FastmaxNormalization.ZeroCentered:
                var centered = normalization == FastmaxNormalization.MeanCentered ? x - x.mean(new long[] { -1 }, keepdim: true) : x;
                var largestNorm = linalg.vector_norm(centered, dims: new long[] { -1 }).amax(new long[] { -1 }, keepdim: true); // [B, H, 1]
                result = centered / largestNorm.clamp_min(NormFloor).unsqueeze(-1);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(normalization), normalization, "unknown normalization");
        }
        return result.MoveToOuterDisposeScope();
    }
}
