using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax.Reference;

/// <summary>
/// The reference: builds the N×N scores exactly as the definition reads. Every fast path is tested against it.
/// a_ij = f(s_ij) / Σ_l f(s_il), f(s) = Σ_l a_l s^l, s_ij = q̂_i·k̂_j / T, masked to j ≤ Nk − Nq + i when causal.
/// </summary>
public static class FastmaxDense
{
    /// <summary>o = A·v [B, H, Nq, Dv].</summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, FastmaxOptions options)
    {
        AttentionInputs.Validate(q, k, v, options.Causal);
        using var scores = Scores(q, k, options);
        return scores.matmul(v);
    }

    /// <summary>The attention matrix A [B, H, Nq, Nk] (rows sum to one).</summary>
    public static Tensor Scores(Tensor q, Tensor k, FastmaxOptions options)
    {
        using var f = Kernel(q, k, options);
        return f / f.sum(-1, keepdim: true);
    }

    /// <summary>The unnormalized kernel f(s_ij) [B, H, Nq, Nk], zero where the causal mask hides a key.</summary>
    public static Tensor Kernel(Tensor q, Tensor k, FastmaxOptions options)
    {
        AttentionInputs.Validate(q, k, k, options.Causal);
        var a = options.ResolvedCoefficients();
        using var scope = NewDisposeScope();
        var s = Normalize(q, options.Normalization, options.Causal).matmul(Normalize(k, options.Normalization, options.Causal).transpose(-1, -2)) / options.Temperature;
        var f = zeros_like(s);
        for (int l = 0; l < a.Length; l++) f = f + a[l] * s.pow(l);
        if (options.Causal)
        {
            long nq = q.size(2), nk = k.size(2);
            var visible = ones(nq, nk, dtype: ScalarType.Bool, device: q.device).tril(nk - nq);
            f = f.masked_fill(visible.logical_not(), 0);
        }
        return f.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The normalizations written out plainly (an independent twin of <see cref="FastmaxNormalizer"/>). Causal: token n is
    /// scaled by the largest norm among tokens 0..n, found by an explicit loop over the prefix.
    /// </summary>
    public static Tensor Normalize(Tensor x, FastmaxNormalization normalization, bool causal = false)
    {
        using var scope = NewDisposeScope();
        var centered = normalization == FastmaxNormalization.MeanCentered ? x - x.mean(new long[] { 3 }, keepdim: true) : x;
        var tokenNorms = linalg.vector_norm(centered, dims: new long[] { 3 }, keepdim: true); // [B, H, N, 1]
        var measure = normalization == FastmaxNormalization.SquaredNorm ? tokenNorms.square() : tokenNorms;
        var scale = causal
            ? stack(Enumerable.Range(0, (int)x.size(2)).Select(n => measure.narrow(2, 0, n + 1).amax(new long[] { 2 })).ToArray(), 2) // [B, H, N, 1]
            : measure.amax(new long[] { 2 }, keepdim: true);                                                                              // [B, H, 1, 1]
        var result = normalization switch
        {
            FastmaxNormalization.None => x * 1,
            FastmaxNormalization.SquaredNorm => x / scale.clamp_min(FastmaxNormalizer.SquaredNormFloor),
            _ => centered / scale.clamp_min(FastmaxNormalizer.NormFloor),
        };
        return result.MoveToOuterDisposeScope();
    }
}
