using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax.Reference;

/// <summary>
/// Fastmax in its N×N form for short sequences: s = q̂·k̂ᵀ, f(s) by Horner's rule, masked when causal, and
/// [numerator, g] = f·[v, 1] in one GEMM. Exactly the same function as the factorized kernel, at O(Nq·Nk·(D + Dv))
/// work instead of O((Nq + Nk)·F·Dv): cheaper while the sequence is shorter than about half the feature count F (50 tokens
/// against F = 325 features at D = 24 in the paper's MNIST model). Autograd differentiates it; it keeps the
/// Nq×Nk scores, so <see cref="FastmaxDispatch.Algorithm"/> sends it only short sequences. Inputs are already normalized.
/// </summary>
public static class FastmaxQuadratic
{
    /// <summary>o [B, H, Nq, Dv] for q [B, H, Nq, D], k [B, H, Nk, D], v [B, H, Nk, Dv], coefficients a_0..a_p.</summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, double[] a, bool causal)
    {
        using var scope = NewDisposeScope();
        var s = q.matmul(k.transpose(-1, -2));                                // [B, H, Nq, Nk]
        var f = s * a[^1] + a[^2];
        for (int l = a.Length - 3; l >= 0; l--) f = f * s + a[l];
        if (causal)
        {
            long nq = q.size(2), nk = k.size(2);
            using var hidden = ones(nq, nk, dtype: ScalarType.Bool, device: q.device).tril(nk - nq).logical_not_();
            f = f.masked_fill(hidden, 0);
        }
        long dv = v.size(3);
        var weighted = f.matmul(cat(new[] { v, ones_like(v.narrow(-1, 0, 1)) }, -1)); // [B, H, Nq, Dv + 1]
        return (weighted.narrow(-1, 0, dv) / weighted.narrow(-1, dv, 1)).MoveToOuterDisposeScope();
    }
}
