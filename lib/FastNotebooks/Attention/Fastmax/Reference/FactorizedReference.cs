using static TorchSharp.torch;
using static FastNotebooks.Attention.Fastmax.TensorOps.FastmaxFactorized;
using static FastNotebooks.Attention.Fastmax.Reference.TaylorFeatures;

namespace FastNotebooks.Attention.Fastmax.Reference;

/// <summary>
/// The general-order path (any p, used for p = 3 and as a second oracle in tests): symmetric Taylor features
/// gathered by index (<see cref="TaylorFeatures"/>), the query side carrying the weights.
/// Unmasked Fastmax by factorized moments (README.md, "Unmasked"): with φ the Taylor features and v′ = [v, 1],
/// S = Σ_j φ_k(k_j)ᵀ v′_j is one [F, Dv + 1] matrix and [numerator, g]_i = φ_q(q_i)·S. O(N·F·Dv) work;
/// features exist for one chunk of tokens at a time. Inputs are already normalized (q may carry 1/temperature).
/// </summary>
public static class FactorizedReference
{
    /// <summary>o [B, H, Nq, Dv] and the denominator g [B, H, Nq] for q [B, H, Nq, D], k [B, H, Nk, D], v [B, H, Nk, Dv].</summary>
    public static (Tensor Output, Tensor Denominator) Forward(Tensor q, Tensor k, Tensor v, double[] a, int chunk)
    {
        using var scope = NewDisposeScope();
        int order = a.Length - 1;
        var state = KeyValueState(k, v, order, chunk);                       // [B, H, F, Dv + 1]
        var rows = Chunks(q, chunk).Select(qc => Query(qc, a).matmul(state)); // [B, H, c, Dv + 1]
        var (o, g) = OutputAndDenominator(cat(rows.ToList(), 2), v.size(3));
        return (o.MoveToOuterDisposeScope(), g.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Gradients for dL/do, recomputing the moments (README.md, "Backward"). With Ĝ_i = dO_i / g_i,
    /// r_i = Ĝ_i·o_i and Ĝ′ = [Ĝ, −r], dL/ds_ij = f′(s_ij)·(Ĝ′_i·v′_j), which factorizes as
    /// dq = (φ′_q ⊗ Ĝ′)·M with M = Σ_j (φ′_k ⊗ v′)_jᵀ k_j; dk = (φ′_k ⊗ v′)·Nq with Nq = Σ_i (φ′_q ⊗ Ĝ′)_iᵀ q_i;
    /// and dv = φ_k·P with P = Σ_i φ_q(q_i)ᵀ Ĝ_i.
    /// </summary>
    public static (Tensor Dq, Tensor Dk, Tensor Dv) Backward(
        Tensor q, Tensor k, Tensor v, Tensor o, Tensor g, Tensor gradOutput, double[] a, int chunk)
    {
        using var scope = NewDisposeScope();
        int order = a.Length - 1;
        var b = Derivative(a);
        var (gHat, gPrime) = ScaledOutputGradientsByTensorOps(o, g, gradOutput);
        var vOne = AppendOnes(v);

        // Sums over all keys (for dq) and all queries (for dk, dv).
        Tensor? m = null, nq = null, p = null;
        foreach (var (kc, vc) in Chunks(k, chunk).Zip(Chunks(vOne, chunk)))
            Accumulate(ref m, RowOuter(Key(kc, order - 1), vc).transpose(-1, -2).matmul(kc));
        foreach (var (qc, gc, gpc) in Chunks(q, chunk).Zip(Chunks(gHat, chunk), Chunks(gPrime, chunk)))
        {
            Accumulate(ref nq, RowOuter(Query(qc, b), gpc).transpose(-1, -2).matmul(qc));
            Accumulate(ref p, Query(qc, a).transpose(-1, -2).matmul(gc));
        }

        var dq = cat(Chunks(q, chunk).Zip(Chunks(gPrime, chunk))
            .Select(t => RowOuter(Query(t.First, b), t.Second).matmul(m!)).ToList(), 2);
        var dk = cat(Chunks(k, chunk).Zip(Chunks(vOne, chunk))
            .Select(t => RowOuter(Key(t.First, order - 1), t.Second).matmul(nq!)).ToList(), 2);
        var dv = cat(Chunks(k, chunk).Select(kc => Key(kc, order).matmul(p!)).ToList(), 2);
        return (dq.MoveToOuterDisposeScope(), dk.MoveToOuterDisposeScope(), dv.MoveToOuterDisposeScope());
    }

    /// <summary>S = Σ_j φ_k(k_j)ᵀ [v_j, 1] over all keys: [B, H, F, Dv + 1].</summary>
    internal static Tensor KeyValueState(Tensor k, Tensor v, int order, int chunk)
    {
        using var scope = NewDisposeScope();
        Tensor? state = null;
        foreach (var (kc, vc) in Chunks(k, chunk).Zip(Chunks(v, chunk)))
            Accumulate(ref state, Key(kc, order).transpose(-1, -2).matmul(AppendOnes(vc)));
        return state!.MoveToOuterDisposeScope();
    }
}
