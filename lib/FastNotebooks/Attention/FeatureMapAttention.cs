using static TorchSharp.torch;

namespace FastNotebooks.Attention;

/// <summary>
/// Kernelized attention from explicit features, differentiated by plain autograd:
/// o_i = Σ_j (φq_i·φk_j) v_j / Σ_j (φq_i·φk_j). Unmasked: one state Σ_j φk_jᵀ[v_j, 1]. Causal (j ≤ Nk − Nq + i):
/// chunks with a running state and a lower-triangular block inside the chunk. Used where features cannot be
/// recomputed from q and k alone (feature dropout) and by linear attention.
/// </summary>
public static class FeatureMapAttention
{
    /// <summary>o [B, H, Nq, Dv] from φq [B, H, Nq, F], φk [B, H, Nk, F], v [B, H, Nk, Dv].</summary>
    public static Tensor Forward(Tensor phiQ, Tensor phiK, Tensor v, bool causal, int chunk)
    {
        using var scope = NewDisposeScope();
        var vOne = cat(new[] { v, ones_like(v.narrow(-1, 0, 1)) }, -1);   // [B, H, Nk, Dv + 1]
        long nq = phiQ.size(2), offset = phiK.size(2) - nq;
        Tensor numeratorAndDenominator;
        if (!causal)
        {
            var state = phiK.transpose(-1, -2).matmul(vOne);               // [B, H, F, Dv + 1]
            numeratorAndDenominator = phiQ.matmul(state);
        }
        else
        {
            Tensor? state = offset > 0 ? phiK.narrow(2, 0, offset).transpose(-1, -2).matmul(vOne.narrow(2, 0, offset)) : null;
            var rows = new List<Tensor>();
            for (long i0 = 0; i0 < nq; i0 += chunk)
            {
                long c = Math.Min(chunk, nq - i0);
                var qc = phiQ.narrow(2, i0, c);
                var kc = phiK.narrow(2, offset + i0, c);
                var vc = vOne.narrow(2, offset + i0, c);
                var within = qc.matmul(kc.transpose(-1, -2)).tril().matmul(vc);
                rows.Add(state is null ? within : within + qc.matmul(state));
                var update = kc.transpose(-1, -2).matmul(vc);
                state = state is null ? update : state + update;           // not in place: autograd keeps each state
            }
            numeratorAndDenominator = cat(rows, 2);
        }
        long dv = v.size(3);
        var o = numeratorAndDenominator.narrow(-1, 0, dv) / numeratorAndDenominator.narrow(-1, dv, 1);
        return o.MoveToOuterDisposeScope();
    }
}
