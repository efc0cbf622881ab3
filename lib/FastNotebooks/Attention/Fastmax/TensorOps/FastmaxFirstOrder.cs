using FastNotebooks.Attention.Fastmax.Cpu;
using static TorchSharp.torch;
using static FastNotebooks.Attention.Fastmax.TensorOps.FastmaxFactorized;

namespace FastNotebooks.Attention.Fastmax.TensorOps;

/// <summary>
/// Unmasked Fastmax of order 1 in closed form. φ(x̃) = x̃ = [x, 1] has only D + 1 features, so no chunking and no
/// feature tensor: the weighted key state W = w ⊙ Σ_j x̃_jᵀ v′_j [B, H, D + 1, Dv + 1] is kᵀ·v, Σk, Σv and N, and
/// [numerator, g] = q·W[:D] + W[D] is one GEMM with a broadcast row. The backward is four GEMMs of the same shape
/// (README.md, "Backward"). Same contract as <see cref="FastmaxFactorized"/>. <see cref="FirstOrderTiles"/> is the same
/// arithmetic on the CPU kernels, with the broadcasts, sums and divisions done per token as the GEMMs hand their rows over;
/// this tensor-op form is its reference (and the path for everything else; <see cref="FastmaxDispatch"/> chooses).
/// </summary>
public static class FastmaxFirstOrder
{
    /// <summary>o [B, H, Nq, Dv], g [B, H, Nq] and the weighted key state [B, H, D + 1, Dv + 1] for coefficients a = (a0, a1).</summary>
    public static (Tensor Output, Tensor Denominator, Tensor KeyState) Forward(Tensor q, Tensor k, Tensor v, double[] a, KernelPlan? plan = null)
    {
        plan ??= KernelPlan.TensorOps;
        using var scope = NewDisposeScope();
        var keyState = WeightedState(k, v, a, plan);                           // [B, H, D + 1, Dv + 1]
        var (o, g) = OutputAndDenominator(Affine(q, keyState, plan), v.size(3));
        return (o.MoveToOuterDisposeScope(), g.MoveToOuterDisposeScope(), keyState.MoveToOuterDisposeScope());
    }

    /// <summary>dq, dk, dv for dL/do; <paramref name="keyState"/> is the forward's, or null to recompute it.</summary>
    public static (Tensor Dq, Tensor Dk, Tensor Dv) Backward(
        Tensor q, Tensor k, Tensor v, Tensor o, Tensor g, Tensor gradOutput, double[] a, Tensor? keyState = null, KernelPlan? plan = null)
    {
        plan ??= KernelPlan.TensorOps;
        using var scope = NewDisposeScope();
        long d = q.size(3), dv = v.size(3);
        keyState ??= WeightedState(k, v, a, plan);
        var (_, gPrime) = plan.ScaledOutputGradients(o, g, gradOutput);      // [B, H, Nq, Dv + 1]
        var queryState = WeightedState(q, gPrime, a, plan, appendOne: false);  // w ⊙ Σ_i q̃_iᵀ Ĝ′_i [B, H, D + 1, Dv + 1]
        // dq_i = Ĝ′_i·W[:D]ᵀ; dk_j = v′_j·R[:D]ᵀ and dv_j = k̃_j·R[:, :Dv], with v′ = [v, 1] and k̃ = [k, 1] as broadcast rows.
        var dq = plan.MatMul(gPrime, keyState.narrow(2, 0, d).transpose(-1, -2).contiguous());
        var queryRows = queryState.narrow(2, 0, d);                            // [B, H, D, Dv + 1]
        var dk = plan.MatMul(v, queryRows.narrow(3, 0, dv).transpose(-1, -2).contiguous()).AddInPlace(queryRows.narrow(3, dv, 1).transpose(-1, -2));
        var dV = Affine(k, queryState.narrow(3, 0, dv), plan);
        return (dq.MoveToOuterDisposeScope(), dk.MoveToOuterDisposeScope(), dV.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// w ⊙ Σ_j x̃_jᵀ u′_j for x [B, H, N, D] and u [B, H, N, C]: rows a1·xᵀu′ and a0·Σu′, with u′ = [u, 1] when
    /// <paramref name="appendOne"/> (the key side) and u′ = u otherwise (Ĝ′ already carries its last column).
    /// </summary>
    static Tensor WeightedState(Tensor x, Tensor u, double[] a, KernelPlan plan, bool appendOne = true)
    {
        using var scope = NewDisposeScope();
        var xu = plan.MatMul(x.transpose(-1, -2), u);                                  // [B, H, D, C]
        var uSum = u.sum(2, keepdim: true);                                     // [B, H, 1, C]
        if (appendOne)
        {
            xu = cat(new[] { xu, x.sum(2).unsqueeze(-1) }, -1);                 // [B, H, D, C + 1]
            uSum = cat(new[] { uSum, full(uSum.Shape()[..^1].Append(1).ToArray(), (double)x.size(2), dtype: u.dtype, device: u.device) }, -1);
        }
        return cat(new[] { xu.mul_(a[1]), uSum.mul_(a[0]) }, 2).MoveToOuterDisposeScope(); // [B, H, D + 1, C′]
    }

    /// <summary>x̃·W = x·W[:D] + W[D] for x [B, H, N, D] and W [B, H, D + 1, C]: one GEMM and a broadcast row.</summary>
    static Tensor Affine(Tensor x, Tensor state, KernelPlan plan)
    {
        long d = x.size(3);
        return plan.MatMul(x, state.narrow(2, 0, d)).AddInPlace(state.narrow(2, d, 1));
    }
}
