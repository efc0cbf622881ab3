using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;
using static FastNotebooks.Attention.Fastmax.FastmaxFactorized;

namespace FastNotebooks.Attention.Fastmax;

/// <summary>
/// Unmasked Fastmax of order 1 in closed form. φ(x̃) = x̃ = [x, 1] has only D + 1 features, so no chunking and no
/// feature tensor: the weighted key state W = w ⊙ Σ_j x̃_jᵀ v′_j [B, H, D + 1, Dv + 1] is kᵀ·v, Σk, Σv and N, and
/// [numerator, g] = q·W[:D] + W[D] is one GEMM with a broadcast row. The backward is four GEMMs of the same shape
/// (README.md, "Backward"). Same contract as <see cref="FastmaxFactorized"/>. Contiguous float32 CPU inputs on AVX-512
/// take <see cref="FusedForward"/>, the same arithmetic with the broadcasts and the division done per token as the
/// output GEMM hands its rows over; the tensor-op form is its reference (and the path for everything else).
/// </summary>
public static unsafe class FastmaxFirstOrder
{
    /// <summary>o [B, H, Nq, Dv], g [B, H, Nq] and the weighted key state [B, H, D + 1, Dv + 1] for coefficients a = (a0, a1).</summary>
    public static (Tensor Output, Tensor Denominator, Tensor KeyState) Forward(Tensor q, Tensor k, Tensor v, double[] a)
    {
        if (Fuses(q, k, v)) return FusedForward(q, k, v, a);
        using var scope = NewDisposeScope();
        var keyState = WeightedState(k, v, a);                                 // [B, H, D + 1, Dv + 1]
        var (o, g) = OutputAndDenominator(Affine(q, keyState), v.shape[3]);
        return (o.MoveToOuterDisposeScope(), g.MoveToOuterDisposeScope(), keyState.MoveToOuterDisposeScope());
    }

    /// <summary>dq, dk, dv for dL/do; <paramref name="keyState"/> is the forward's, or null to recompute it.</summary>
    public static (Tensor Dq, Tensor Dk, Tensor Dv) Backward(
        Tensor q, Tensor k, Tensor v, Tensor o, Tensor g, Tensor gradOutput, double[] a, Tensor? keyState = null)
    {
        using var scope = NewDisposeScope();
        long d = q.shape[3], dv = v.shape[3];
        keyState ??= WeightedState(k, v, a);
        var (_, gPrime) = ScaledOutputGradients(o, g, gradOutput);           // [B, H, Nq, Dv + 1]
        var queryState = WeightedState(q, gPrime, a, appendOne: false);        // w ⊙ Σ_i q̃_iᵀ Ĝ′_i [B, H, D + 1, Dv + 1]
        // dq_i = Ĝ′_i·W[:D]ᵀ; dk_j = v′_j·R[:D]ᵀ and dv_j = k̃_j·R[:, :Dv], with v′ = [v, 1] and k̃ = [k, 1] as broadcast rows.
        var dq = SimdGemm.MatMul(gPrime, keyState.narrow(2, 0, d).transpose(-1, -2).contiguous());
        var queryRows = queryState.narrow(2, 0, d);                            // [B, H, D, Dv + 1]
        var dk = SimdGemm.MatMul(v, queryRows.narrow(3, 0, dv).transpose(-1, -2).contiguous()).add_(queryRows.narrow(3, dv, 1).transpose(-1, -2));
        var dV = Affine(k, queryState.narrow(3, 0, dv));
        return (dq.MoveToOuterDisposeScope(), dk.MoveToOuterDisposeScope(), dV.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// w ⊙ Σ_j x̃_jᵀ u′_j for x [B, H, N, D] and u [B, H, N, C]: rows a1·xᵀu′ and a0·Σu′, with u′ = [u, 1] when
    /// <paramref name="appendOne"/> (the key side) and u′ = u otherwise (Ĝ′ already carries its last column).
    /// </summary>
    static Tensor WeightedState(Tensor x, Tensor u, double[] a, bool appendOne = true)
    {
        using var scope = NewDisposeScope();
        var xu = SimdGemm.MatMul(x.transpose(-1, -2), u);                               // [B, H, D, C]
        var uSum = u.sum(2, keepdim: true);                                     // [B, H, 1, C]
        if (appendOne)
        {
            xu = cat(new[] { xu, x.sum(2).unsqueeze(-1) }, -1);                 // [B, H, D, C + 1]
            uSum = cat(new[] { uSum, full(uSum.shape[..^1].Append(1).ToArray(), (double)x.shape[2], dtype: u.dtype, device: u.device) }, -1);
        }
        return cat(new[] { xu.mul_(a[1]), uSum.mul_(a[0]) }, 2).MoveToOuterDisposeScope(); // [B, H, D + 1, C′]
    }

    /// <summary>x̃·W = x·W[:D] + W[D] for x [B, H, N, D] and W [B, H, D + 1, C]: one GEMM and a broadcast row.</summary>
    static Tensor Affine(Tensor x, Tensor state)
    {
        long d = x.shape[3];
        return SimdGemm.MatMul(x, state.narrow(2, 0, d)).add_(state.narrow(2, d, 1));
    }

    /// <summary>True for contiguous float32 CPU q, k, v whose products <see cref="SimdGemm"/> computes.</summary>
    static bool Fuses(Tensor q, Tensor k, Tensor v) =>
        q.is_contiguous() && k.is_contiguous() && v.is_contiguous() && q.numel() > 0 && k.shape[2] > 0
        && q.dtype == ScalarType.Float32 && q.device_type == DeviceType.CPU && !(is_grad_enabled() && q.requires_grad)
        && SimdGemm.Applies(k.transpose(-1, -2), v);

    /// <summary>
    /// <see cref="Forward"/> with the key state assembled in place (a1·kᵀv by the tiles, a1·Σk, a0·Σv, a0·N) and
    /// o_i = (q_i·W[:D, :Dv] + W[D, :Dv]) / (q_i·W[:D, Dv] + W[D, Dv]) finished row by row as the tiles hand over q·W[:D, :Dv].
    /// </summary>
    static (Tensor Output, Tensor Denominator, Tensor KeyState) FusedForward(Tensor q, Tensor k, Tensor v, double[] a)
    {
        using var scope = NewDisposeScope();
        long slices = q.shape[0] * q.shape[1], nq = q.shape[2], nk = k.shape[2];
        int d = (int)q.shape[3], dv = (int)v.shape[3], width = dv + 1;
        var (a0, a1) = ((float)a[0], (float)a[1]);
        var keyValues = SimdGemm.MatMul(k.transpose(-1, -2), v);                 // [B, H, D, Dv]
        var keyState = empty(new[] { q.shape[0], q.shape[1], d + 1L, width }, dtype: ScalarType.Float32);
        using var keySums = k.sum(2);                                            // [B, H, D]
        using var valueSums = v.sum(2);                                          // [B, H, Dv]
        float* pkv = SimdGemm.Address(keyValues), pw = SimdGemm.Address(keyState), pks = SimdGemm.Address(keySums), pvs = SimdGemm.Address(valueSums);
        for (long slice = 0; slice < slices; slice++)
        {
            float* w = pw + slice * (d + 1) * width, last = w + d * width;
            for (int r = 0; r < d; r++)
            {
                TokenLoops.Scale(new ReadOnlySpan<float>(pkv + (slice * d + r) * dv, dv), a1, new Span<float>(w + r * width, dv));
                w[r * width + dv] = a1 * pks[slice * d + r];
            }
            TokenLoops.Scale(new ReadOnlySpan<float>(pvs + slice * dv, dv), a0, new Span<float>(last, dv));
            last[dv] = a0 * nk;
        }

        var o = empty(new[] { q.shape[0], q.shape[1], nq, dv }, dtype: ScalarType.Float32);
        var g = empty(new[] { q.shape[0], q.shape[1], nq }, dtype: ScalarType.Float32);
        float* pq = SimdGemm.Address(q), po = SimdGemm.Address(o), pg = SimdGemm.Address(g);
        var ones = new float[slices * d];                                        // W[:D, Dv] per slice, contiguous
        for (long slice = 0; slice < slices; slice++)
            for (int r = 0; r < d; r++) ones[slice * d + r] = pw[(slice * (d + 1) + r) * width + dv];
        SimdGemm.MatMulRows(q, keyState.narrow(2, 0, d).narrow(3, 0, dv), 0, (slice, firstRow, rows, block, ld) =>
        {
            float* last = pw + (slice * (d + 1) + d) * width;
            var bias = new ReadOnlySpan<float>(last, dv);
            var weights = new ReadOnlySpan<float>(ones, (int)(slice * d), d);
            for (int r = 0; r < rows; r++)
            {
                long token = slice * nq + firstRow + r;
                float gi = TokenLoops.Dot(new ReadOnlySpan<float>(pq + token * d, d), weights) + last[dv];
                pg[token] = gi;
                TokenLoops.AddThenDivide(new ReadOnlySpan<float>(block + r * ld, dv), bias, gi, new Span<float>(po + token * dv, dv));
            }
        });
        GC.KeepAlive(q); GC.KeepAlive(keyValues);
        return (o.MoveToOuterDisposeScope(), g.MoveToOuterDisposeScope(), keyState.MoveToOuterDisposeScope());
    }
}
