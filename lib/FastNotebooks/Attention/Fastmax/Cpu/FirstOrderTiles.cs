using System.Runtime.CompilerServices;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// Order-1 unmasked Fastmax (<see cref="FastmaxFirstOrder"/>, the reference) for contiguous float32 CPU tensors on
/// <see cref="SimdGemm"/>'s tiles: the same GEMMs, with the small work around them (the key state's sums, the broadcast
/// rows, the division by g, Ĝ = dL/do / g and r = Ĝ·o) done per token as the tiles hand their rows over, instead of as a
/// dozen tensor ops on [B, H, N, ·] that each read and write the whole sequence.
/// </summary>
internal static unsafe class FirstOrderTiles
{
    /// <summary>True for contiguous float32 CPU q, k, v whose products <see cref="SimdGemm"/> computes.</summary>
    public static bool Supports(Tensor q, Tensor k, Tensor v) =>
        q.is_contiguous() && k.is_contiguous() && v.is_contiguous() && q.numel() > 0 && k.size(2) > 0
        && q.dtype == ScalarType.Float32 && q.device_type == DeviceType.CPU && !(is_grad_enabled() && q.requires_grad)
        && SimdGemm.Supports(k.transpose(-1, -2), v);

    /// <summary>
    /// <see cref="FastmaxFirstOrder.Forward"/> with the key state assembled in place (a1·kᵀv by the tiles, a1·Σk, a0·Σv, a0·N) and
    /// o_i = (q_i·W[:D, :Dv] + W[D, :Dv]) / (q_i·W[:D, Dv] + W[D, Dv]) finished row by row as the tiles hand over q·W[:D, :Dv].
    /// </summary>
    public static (Tensor Output, Tensor Denominator, Tensor KeyState) Forward(Tensor q, Tensor k, Tensor v, double[] a)
    {
        using var scope = NewDisposeScope();
        long slices = q.size(0) * q.size(1), nq = q.size(2), nk = k.size(2);
        int d = (int)q.size(3), dv = (int)v.size(3), width = dv + 1;
        var (a0, a1) = ((float)a[0], (float)a[1]);
        var keyValues = SimdGemm.MatMul(k.transpose(-1, -2), v);                 // [B, H, D, Dv]
        var keyState = empty(new[] { q.size(0), q.size(1), d + 1L, width }, dtype: ScalarType.Float32);
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

        var o = empty(new[] { q.size(0), q.size(1), nq, dv }, dtype: ScalarType.Float32);
        var g = empty(new[] { q.size(0), q.size(1), nq }, dtype: ScalarType.Float32);
        float* pq = SimdGemm.Address(q), po = SimdGemm.Address(o), pg = SimdGemm.Address(g);
        var ones = OnesColumn(pw, slices, d, width);
        fixed (float* pones = ones)
        {
            float* onesColumn = pones;
            SimdGemm.MatMulRows(q, keyState.narrow(2, 0, d).narrow(3, 0, dv), 0, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (slice, firstRow, rows, block, ld) =>
                FinishRows(pq, po, pg, pw + (slice * (d + 1) + d) * width, onesColumn + slice * d, slice * nq + firstRow, rows, block, ld, d, dv));
        }
        GC.KeepAlive(q); GC.KeepAlive(keyValues);
        return (o.MoveToOuterDisposeScope(), g.MoveToOuterDisposeScope(), keyState.MoveToOuterDisposeScope());
    }

    /// <summary>g_t = q_t·w + last[Dv] and o_t = (q·W row + last[:Dv]) / g_t for the rows a tile handed over, from token <paramref name="token"/> on.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void FinishRows(float* pq, float* po, float* pg, float* last, float* weights, long token, int rows, float* block, int ld, int d, int dv)
    {
        for (int r = 0; r < rows; r++, token++)
        {
            float gi = RowZmm.Dot(pq + token * d, weights, d) + last[dv];
            pg[token] = gi;
            RowZmm.AddThenDivide(block + r * ld, last, gi, po + token * dv, dv);
        }
    }

    /// <summary>
    /// <see cref="FastmaxFirstOrder.Backward"/> for the forward's key state W: with Ĝ = dL/do / g and r = Ĝ·o,
    /// R = [[a1·qᵀĜ, −a1·qᵀr], [a0·ΣĜ, −a0·Σr]]; dq_i = Ĝ_i·W[:D, :Dv]ᵀ − r_i·W[:D, Dv], dk_j = v_j·R[:D, :Dv]ᵀ + R[:D, Dv],
    /// dv_j = k_j·R[:D, :Dv] + R[D, :Dv]: four GEMMs, one pass over the tokens for Ĝ and the sums.
    /// </summary>
    public static (Tensor Dq, Tensor Dk, Tensor Dv) Backward(Tensor q, Tensor k, Tensor v, Tensor o, Tensor g, Tensor gradOutput, double[] a, Tensor keyState)
    {
        using var scope = NewDisposeScope();
        long slices = q.size(0) * q.size(1), nq = q.size(2);
        int d = (int)q.size(3), dv = (int)v.size(3), width = dv + 1;
        var (a0, a1) = ((float)a[0], (float)a[1]);
        var (oc, gc, dO) = (o.contiguous(), g.contiguous(), gradOutput.contiguous());
        var gHat = empty(new[] { q.size(0), q.size(1), nq, dv }, dtype: ScalarType.Float32);
        var r = new float[slices * nq];
        var queryR = new float[slices * d];      // Σ_i r_i·q_i
        var gHatSum = new float[slices * dv];    // Σ_i Ĝ_i
        float* pq = SimdGemm.Address(q), po = SimdGemm.Address(oc), pg = SimdGemm.Address(gc), pd = SimdGemm.Address(dO), ph = SimdGemm.Address(gHat);
        fixed (float* pr = r, pqr = queryR, phs = gHatSum)
            for (long slice = 0; slice < slices; slice++)
                ScaledGradients(pd, po, pg, pq, ph, pr, pqr + slice * d, phs + slice * dv, slice * nq, nq, d, dv);
        using var scaleA1 = a1.ToScalar();                                          // disposed here, not left for a finalizer
        var queryGrad = SimdGemm.MatMul(q.transpose(-1, -2), gHat).mul_(scaleA1);  // a1·qᵀĜ = R[:D, :Dv] [B, H, D, Dv]
        var queryGradT = queryGrad.transpose(-1, -2).contiguous();                  // [B, H, Dv, D]
        var stateT = keyState.narrow(2, 0, d).narrow(3, 0, dv).transpose(-1, -2).contiguous(); // W[:D, :Dv]ᵀ [B, H, Dv, D]
        var ones = OnesColumn(SimdGemm.Address(keyState), slices, d, width);
        for (long slice = 0; slice < slices; slice++)
        {
            TokenLoops.Scale<float>(new Span<float>(queryR, (int)(slice * d), d), -a1, new Span<float>(queryR, (int)(slice * d), d));
            TokenLoops.Scale<float>(new Span<float>(gHatSum, (int)(slice * dv), dv), a0, new Span<float>(gHatSum, (int)(slice * dv), dv));
        }

        var dq = empty(q.Shape(), dtype: ScalarType.Float32);
        float* pdq = SimdGemm.Address(dq);
        fixed (float* pones = ones, pr = r)
        {
            float* onesColumn = pones, rs = pr;
            SimdGemm.MatMulRows(gHat, stateT, 0, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (slice, firstRow, rows, block, ld) =>
            {
                float* w = onesColumn + slice * d;
                for (long row = 0, token = slice * nq + firstRow; row < rows; row++, token++)
                    RowZmm.AddScaled(block + row * ld, w, -rs[token], pdq + token * d, d);
            });
        }
        var dk = PlusRow(v, queryGradT, queryR, d);
        var dV = PlusRow(k, queryGrad, gHatSum, dv);
        GC.KeepAlive(q); GC.KeepAlive(oc); GC.KeepAlive(gc); GC.KeepAlive(dO); GC.KeepAlive(gHat); GC.KeepAlive(keyState);
        return (dq.MoveToOuterDisposeScope(), dk.MoveToOuterDisposeScope(), dV.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// For the <paramref name="count"/> tokens from <paramref name="token"/> on: Ĝ_t = dL/do_t / g_t (written), r_t = Ĝ_t·o_t, and the
    /// slice's sums Σ r_t·q_t into <paramref name="queryR"/> and Σ Ĝ_t into <paramref name="gHatSum"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ScaledGradients(float* pd, float* po, float* pg, float* pq, float* ph, float* r, float* queryR, float* gHatSum, long token, long count, int d, int dv)
    {
        for (long end = token + count; token < end; token++)
        {
            float* scaled = ph + token * dv;
            RowZmm.Divide(pd + token * dv, pg[token], scaled, dv);
            float ri = RowZmm.Dot(scaled, po + token * dv, dv);
            r[token] = ri;
            RowZmm.AddScaled(queryR, pq + token * d, ri, queryR, d);
            RowZmm.Add(gHatSum, scaled, gHatSum, dv);
        }
    }

    /// <summary>W[:D, Dv] of each slice's key state W [D + 1, width] as one contiguous row of D per slice.</summary>
    static float[] OnesColumn(float* state, long slices, int d, int width)
    {
        var column = new float[slices * d];
        for (long slice = 0; slice < slices; slice++)
            for (int j = 0; j < d; j++) column[slice * d + j] = state[(slice * (d + 1) + j) * width + width - 1];
        return column;
    }

    /// <summary>x·m + bias_slice for x [B, H, N, K] and m [B, H, K, C]; bias holds one row of C per slice.</summary>
    static Tensor PlusRow(Tensor x, Tensor m, float[] bias, int columns)
    {
        var result = empty(new[] { x.size(0), x.size(1), x.size(2), (long)columns }, dtype: ScalarType.Float32);
        float* pr = SimdGemm.Address(result);
        long n = x.size(2);
        fixed (float* pbias = bias)
        {
            float* biases = pbias;
            SimdGemm.MatMulRows(x, m, 0, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (slice, firstRow, rows, block, ld) =>
            {
                float* b = biases + slice * columns;
                for (long row = 0, token = slice * n + firstRow; row < rows; row++, token++)
                    RowZmm.Add(block + row * ld, b, pr + token * columns, columns);
            });
        }
        return result;
    }
}
