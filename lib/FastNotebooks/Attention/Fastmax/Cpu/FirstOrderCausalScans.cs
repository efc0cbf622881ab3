using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// Causal Fastmax of order 1 as running-state scans (<see cref="CausalScan"/>). With q′ = [a1·q, a0] and k′ = [k, 1],
/// f(q_i·k_j) = q′_i·k′_j, so the numerator is Σ_{j ≤ i} (q′_i·k′_j) v_j and the denominator q′_i·Σ_{j ≤ i} k′_j. The
/// gradients are three more scans of the same form, with Ĝ′ = [Ĝ, −r] and v′ = [v, 1] (README.md, "Backward"):
/// dq_i = a1·Σ_{j ≤ i} (Ĝ′_i·v′_j) k_j, dk_j = Σ_{i ≥ j} (v′_j·Ĝ′_i) a1·q_i, dv_j = Σ_{i ≥ j} (k′_j·q′_i) Ĝ_i.
/// The scans read q, k, v and Ĝ as rows and take the appended entries (a0, 1, −r) apart, so where D and Dv are multiples of 8
/// (state rows) or 16 (the columns a scan writes) and there is no key offset, q, k and v are read in place; otherwise padded copies.
/// A key offset (Nk > Nq; query i sees keys j ≤ Nk − Nq + i) is handled by giving the first Nk − Nq positions zero queries.
/// Same contract as <see cref="FastmaxChunked"/>, its reference; float32 CPU tensors with AVX-512 only (<see cref="Supports"/>).
/// </summary>
public static unsafe class FirstOrderCausalScans
{
    /// <summary>True where these scans run (for order 1): float32 CPU tensors and AVX-512.</summary>
    public static bool Supports(Tensor q) =>
        Vector512.IsHardwareAccelerated && q.dtype == ScalarType.Float32 && q.device_type == DeviceType.CPU;

    /// <summary>o [B, H, Nq, Dv] and g [B, H, Nq] for contiguous q, k [B, H, ·, D] and v [B, H, Nk, Dv].</summary>
    public static (Tensor Output, Tensor Denominator) Forward(Tensor q, Tensor k, Tensor v, double[] a)
    {
        var s = new Shapes(q, v);
        using var scope = NewDisposeScope();
        var qx = s.Operand(q, s.Mq, queries: true);                                    // q [S, Nk, ·], zeros before the offset
        var ky = s.Operand(k, s.Mq, queries: false);
        var vw = s.Operand(v, s.Cv, queries: false);
        var (a0, one) = (new[] { (float)a[0] }, new[] { 1f });
        var g = empty(new[] { s.B, s.H, s.Nq }, dtype: ScalarType.Float32);
        var o = empty(new[] { s.B, s.H, s.Nq, s.Dv }, dtype: ScalarType.Float32);
        fixed (float* pa0 = a0, pone = one)
        {
            var extra = new CausalScan.Extra(pa0, 0, pone, 0);                            // q′ = [a1·q, a0], k′ = [k, 1]
            var numerator = s.Scan(qx, ky, s.Mq, extra, (float)a[1], vw, s.Cv, reverse: false);   // [S, Nk, Cv]
            float* pq = SimdGemm.Address(qx), pk = SimdGemm.Address(ky), pn = SimdGemm.Address(numerator), pg = SimdGemm.Address(g), po = SimdGemm.Address(o);
            var (nk, offset, mq, ldq, ldk, cv, dv, nq, a1) = (s.Nk, s.Offset, s.Mq, qx.size(-1), ky.size(-1), s.Cv, s.Dv, s.Nq, (float)a[1]);
            Shapes.ForItems(s.Slices, 1, (double)nk * (mq + dv), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (slice, _) =>
            {
                var denominator = new float[nk];
                fixed (float* d = denominator)
                {
                    CausalScan.Sums(pq + slice * nk * ldq, ldq, pk + slice * nk * ldk, ldk, mq, extra, a1, d, (int)nk);
                    for (long i = 0; i < nq; i++)
                    {
                        float gi = d[offset + i];
                        pg[slice * nq + i] = gi;
                        RowZmm.Divide(pn + (slice * nk + offset + i) * cv, gi, po + (slice * nq + i) * dv, dv);
                    }
                }
            });
            GC.KeepAlive(qx); GC.KeepAlive(ky); GC.KeepAlive(numerator);
        }
        return (o.MoveToOuterDisposeScope(), g.MoveToOuterDisposeScope());
    }

    /// <summary>dq, dk, dv for dL/do, from the forward's o and g.</summary>
    public static (Tensor Dq, Tensor Dk, Tensor Dv) Backward(Tensor q, Tensor k, Tensor v, Tensor o, Tensor g, Tensor gradOutput, double[] a)
    {
        var s = new Shapes(q, v);
        using var scope = NewDisposeScope();
        var (gHat, minusR) = s.ScaledOutputGradients(o.contiguous(), g.contiguous(), gradOutput.contiguous()); // Ĝ [S, Nk, Cv], −r [S, Nk]
        var (qRows, kRows, vRows) = (s.Operand(q, s.Mq, queries: true), s.Operand(k, s.Mq, queries: false), s.Operand(v, s.Mv, queries: false));
        var (kColumns, qColumns) = (s.Operand(k, s.Cd, queries: false), s.Operand(q, s.Cd, queries: true));
        // a0 for the queries that exist, 0 for the positions before the key offset (they add nothing to dv's state).
        var queryA0 = new float[s.Nk];
        Array.Fill(queryA0, (float)a[0], (int)s.Offset, (int)s.Nq);
        var (one, a1) = (new[] { 1f }, new[] { (float)a[1] });
        float* pr = SimdGemm.Address(minusR);
        Tensor dq, dk, dv;
        fixed (float* pone = one, pa1 = a1, pa0 = queryA0)
        {
            // dq = a1·Σ (Ĝ′·v′) k: x′ = [a1·Ĝ, −r], y′ = [v, a1] (the factor a1 on both parts); dk = a1·Σ (v′·Ĝ′) q (reversed):
            // x′ = [a1·v, a1], y′ = [Ĝ, −r]; dv (reversed): x′ = k′ = [k, 1], y′ = q′ = [a1·q, a0].
            dq = s.Scan(gHat, vRows, s.Mv, new CausalScan.Extra(pr, 1, pa1, 0), a1[0], kColumns, s.Cd, reverse: false, xPerSlice: true);
            dk = s.Scan(vRows, gHat, s.Mv, new CausalScan.Extra(pa1, 0, pr, 1), a1[0], qColumns, s.Cd, reverse: true, yPerSlice: true);
            dv = s.Scan(kRows, qRows, s.Mq, new CausalScan.Extra(pone, 0, pa0, 1), a1[0], gHat, s.Cv, reverse: true);
        }
        GC.KeepAlive(minusR);
        var dqOut = dq.narrow(1, s.Offset, s.Nq).narrow(2, 0, s.D).reshape(s.B, s.H, s.Nq, s.D);
        var dkOut = dk.narrow(2, 0, s.D).reshape(s.B, s.H, s.Nk, s.D);
        var dvOut = dv.narrow(2, 0, s.Dv).reshape(s.B, s.H, s.Nk, s.Dv);
        return (dqOut.MoveToOuterDisposeScope(), dkOut.MoveToOuterDisposeScope(), dvOut.MoveToOuterDisposeScope());
    }

    /// <summary>The sizes of one call and the padded buffers its scans read.</summary>
    sealed class Shapes
    {
        public long B, H, Slices, Nq, Nk, Offset;
        public int D, Dv, Mq, Mv, Cd, Cv;

        public Shapes(Tensor q, Tensor v)
        {
            (B, H, Nq, D) = (q.size(0), q.size(1), q.size(2), (int)q.size(3));
            (Nk, Dv) = (v.size(2), (int)v.size(3));
            (Slices, Offset) = (B * H, Nk - Nq);
            (Mq, Mv) = (CausalScan.Padded(D, CausalScan.RowGroup), CausalScan.Padded(Dv, CausalScan.RowGroup));
            (Cd, Cv) = (CausalScan.Padded(D, CausalScan.Panel), CausalScan.Padded(Dv, CausalScan.Panel));
        }

        /// <summary>
        /// x [B, H, N, c] (N = Nq for queries, Nk otherwise) as [S, Nk, ·] rows of at least <paramref name="width"/> floats, zeros
        /// past c: x itself (a view) where it is contiguous, c is already <paramref name="width"/> and no leading zero rows are needed;
        /// else a copy [S, Nk, width] whose query rows start at the key offset, the positions before it zeros.
        /// </summary>
        public Tensor Operand(Tensor x, int width, bool queries)
        {
            if (x.is_contiguous() && x.size(3) == width && x.size(2) == Nk) return x.view(Slices, Nk, width);
            var packed = empty(new[] { Slices, Nk, (long)width }, dtype: ScalarType.Float32);
            var source = x.contiguous();
            float* from = SimdGemm.Address(source), to = SimdGemm.Address(packed);
            long n = x.size(2), first = queries ? Offset : 0, nk = Nk;
            int c = (int)x.size(3);
            ForItems(Slices, 1, (double)Nk * width, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (slice, _) =>
            {
                float* target = to + slice * nk * width;
                new Span<float>(target, (int)(first * width)).Clear();
                PackRows(from + slice * n * c, c, target + first * width, width, n);
            });
            GC.KeepAlive(source);
            return packed;
        }

        /// <summary>n rows of c floats as rows of <paramref name="width"/>: [x_t, 0, …].</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void PackRows(float* row, int c, float* target, int width, long n)
        {
            for (long t = 0; t < n; t++, row += c, target += width)
            {
                RowZmm.Scale(row, 1f, target, c);
                for (int j = c; j < width; j++) target[j] = 0f;
            }
        }

        /// <summary>Ĝ = dL/do / g [S, Nk, Cv] (zero columns past Dv) and −r = −Ĝ·o [S, Nk], zeros before the offset.</summary>
        public (Tensor GHat, Tensor MinusR) ScaledOutputGradients(Tensor o, Tensor g, Tensor gradOutput)
        {
            // Written row by row below; only the leading rows (before the offset) and the padding columns are cleared.
            var gHat = empty(new[] { Slices, Nk, (long)Cv }, dtype: ScalarType.Float32);
            var minusR = empty(new[] { Slices, Nk }, dtype: ScalarType.Float32);
            float* po = SimdGemm.Address(o), pg = SimdGemm.Address(g), pd = SimdGemm.Address(gradOutput);
            float* ph = SimdGemm.Address(gHat), pr = SimdGemm.Address(minusR);
            var (nq, nk, offset, dv, cv) = (Nq, Nk, Offset, Dv, Cv);
            ForItems(Slices, 1, (double)Nk * Cv, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (slice, _) =>
            {
                new Span<float>(ph + slice * nk * cv, (int)(offset * cv)).Clear();
                new Span<float>(pr + slice * nk, (int)offset).Clear();
                for (long i = 0; i < nq; i++)
                {
                    long token = slice * nq + i, row = slice * nk + offset + i;
                    float* scaled = ph + row * cv;
                    RowZmm.Divide(pd + token * dv, pg[token], scaled, dv);
                    for (int j = dv; j < cv; j++) scaled[j] = 0f;
                    pr[row] = -RowZmm.Dot(scaled, po + token * dv, dv);
                }
            });
            GC.KeepAlive(o); GC.KeepAlive(g); GC.KeepAlive(gradOutput);
            return (gHat, minusR);
        }

        /// <summary>
        /// out [S, Nk, cols] with out_t = Σ_{s ≤ t} (x′_t·y′_s) w_s (s ≥ t when reversed) for x, y [S, Nk, ≥ rows] and w [S, Nk, cols],
        /// one work item per slice and pair of panels; the appended entries per token are [S, Nk] where <paramref name="xPerSlice"/> or
        /// <paramref name="yPerSlice"/> says so, else constants.
        /// </summary>
        public Tensor Scan(Tensor x, Tensor y, int rows, CausalScan.Extra extra, float scale, Tensor w, int cols, bool reverse,
            bool xPerSlice = false, bool yPerSlice = false)
        {
            var output = empty(new[] { Slices, Nk, (long)cols }, dtype: ScalarType.Float32);
            float* px = SimdGemm.Address(x), py = SimdGemm.Address(y), pw = SimdGemm.Address(w), pout = SimdGemm.Address(output);
            long nk = Nk, ldx = x.size(-1), ldy = y.size(-1);
            // Two panels a pass (each entry of x and y read once for both), even where that leaves a thread idle: one head's pair on
            // one thread ran faster than its two panels on two (PERF.md, "Order-1 causal scans").
            int panels = cols / CausalScan.Panel, perPass = 2;
            ForItems(Slices, (panels + perPass - 1) / perPass, (double)nk * rows * cols, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (slice, part) =>
            {
                var sliceExtra = new CausalScan.Extra(extra.X + (xPerSlice ? slice * nk : 0), extra.XStride, extra.Y + (yPerSlice ? slice * nk : 0), extra.YStride);
                CausalScan.Product(px + slice * nk * ldx, ldx, py + slice * nk * ldy, ldy, rows, sliceExtra, scale, pw + slice * nk * cols,
                    pout + slice * nk * cols, cols, (int)nk, perPass * part, Math.Min(perPass, panels - perPass * part), reverse);
            });
            GC.KeepAlive(x); GC.KeepAlive(y); GC.KeepAlive(w);
            return output;
        }

    /// <summary>body(slice, part) for every slice and part, split over threads when their work (per slice) pays for them.</summary>
        public static void ForItems(long slices, int parts, double workPerSlice, Action<long, int> body)
        {
            long items = slices * parts;
            int threads = TokenLoops.ThreadsFor(items, slices * workPerSlice);
            if (threads <= 1)
            {
                for (long item = 0; item < items; item++) body(item / parts, (int)(item % parts));
                return;
            }
            SharedPieces.For(items, threads, item => body(item / parts, (int)(item % parts)));
        }
    }
}
