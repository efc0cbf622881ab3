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
        for (long slice = 0; slice < slices; slice++)
        {
            var qr = new Span<float>(queryR, (int)(slice * d), d);
            var hs = new Span<float>(gHatSum, (int)(slice * dv), dv);
            for (long i = 0; i < nq; i++)
            {
                long token = slice * nq + i;
                var scaled = new Span<float>(ph + token * dv, dv);
                TokenLoops.Divide(new ReadOnlySpan<float>(pd + token * dv, dv), pg[token], scaled);
                float ri = TokenLoops.Dot<float>(scaled, new ReadOnlySpan<float>(po + token * dv, dv));
                r[token] = ri;
                TokenLoops.Combine<float>(qr, 1f, new ReadOnlySpan<float>(pq + token * d, d), ri, qr);
                TokenLoops.Accumulate<float>(scaled, hs);
            }
        }
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
        SimdGemm.MatMulRows(gHat, stateT, 0, (slice, firstRow, rows, block, ld) =>
        {
            var w = new ReadOnlySpan<float>(ones, (int)(slice * d), d);
            for (int row = 0; row < rows; row++)
            {
                long token = slice * nq + firstRow + row;
                TokenLoops.Combine(new ReadOnlySpan<float>(block + row * ld, d), 1f, w, -r[token], new Span<float>(pdq + token * d, d));
            }
        });
        var dk = PlusRow(v, queryGradT, queryR, d);
        var dV = PlusRow(k, queryGrad, gHatSum, dv);
        GC.KeepAlive(q); GC.KeepAlive(oc); GC.KeepAlive(gc); GC.KeepAlive(dO); GC.KeepAlive(gHat); GC.KeepAlive(keyState);
        return (dq.MoveToOuterDisposeScope(), dk.MoveToOuterDisposeScope(), dV.MoveToOuterDisposeScope());
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
        SimdGemm.MatMulRows(x, m, 0, (slice, firstRow, rows, block, ld) =>
        {
            var b = new ReadOnlySpan<float>(bias, (int)(slice * columns), columns);
            for (int row = 0; row < rows; row++)
                TokenLoops.Combine(new ReadOnlySpan<float>(block + row * ld, columns), 1f, b, 1f, new Span<float>(pr + (slice * n + firstRow + row) * columns, columns));
        });
        return result;
    }
}
