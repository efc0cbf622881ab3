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
        var qx = s.Pack(q, s.Rq, (float)a[1], (float)a[0], queries: true);      // q′ [S, Nk, Rq]
        var ky = s.Pack(k, s.Rq, 1f, 1f, queries: false);                         // k′
        var vw = s.Rows(v) ?? s.Pack(v, s.Cv, 1f, null, queries: false);          // v
        var numerator = s.Scan(qx, ky, s.Rq, vw, s.Cv, reverse: false);           // [S, Nk, Cv]
        var g = empty(new[] { s.B, s.H, s.Nq }, dtype: ScalarType.Float32);
        var o = empty(new[] { s.B, s.H, s.Nq, s.Dv }, dtype: ScalarType.Float32);
        float* pq = SimdGemm.Address(qx), pk = SimdGemm.Address(ky), pn = SimdGemm.Address(numerator), pg = SimdGemm.Address(g), po = SimdGemm.Address(o);
        var (nk, offset, rq, cv, dv, nq) = (s.Nk, s.Offset, s.Rq, s.Cv, s.Dv, s.Nq);
        Shapes.ForItems(s.Slices, 1, (double)nk * (rq + dv), (slice, _) =>
        {
            var denominator = new float[nk];
            fixed (float* d = denominator)
            {
                CausalScan.Sums(pq + slice * nk * rq, pk + slice * nk * rq, rq, d, (int)nk);
                for (long i = 0; i < nq; i++)
                {
                    float gi = d[offset + i];
                    pg[slice * nq + i] = gi;
                    RowZmm.Divide(pn + (slice * nk + offset + i) * cv, gi, po + (slice * nq + i) * dv, dv);
                }
            }
        });
        GC.KeepAlive(qx); GC.KeepAlive(ky); GC.KeepAlive(numerator);
        return (o.MoveToOuterDisposeScope(), g.MoveToOuterDisposeScope());
    }

    /// <summary>dq, dk, dv for dL/do, from the forward's o and g.</summary>
    public static (Tensor Dq, Tensor Dk, Tensor Dv) Backward(Tensor q, Tensor k, Tensor v, Tensor o, Tensor g, Tensor gradOutput, double[] a)
    {
        var s = new Shapes(q, v);
        using var scope = NewDisposeScope();
        var (gPrime, gHat) = s.ScaledOutputGradients(o.contiguous(), g.contiguous(), gradOutput.contiguous()); // Ĝ′ [S, Nk, Rv], Ĝ [S, Nk, Cv]
        var vOne = s.Pack(v, s.Rv, 1f, 1f, queries: false);                       // v′
        var dq = s.Scan(gPrime, vOne, s.Rv, s.Rows(k) ?? s.Pack(k, s.Cd, 1f, null, queries: false), s.Cd, reverse: false);
        // dk's weights a1·q: q's own rows where they need no padding or leading zeros, a1 then applied to dk.
        var queryRows = s.Offset == 0 ? s.Rows(q) : null;
        var dk = s.Scan(vOne, gPrime, s.Rv, queryRows ?? s.Pack(q, s.Cd, (float)a[1], null, queries: true), s.Cd, reverse: true);
        if (queryRows is not null) dk.mul_(a[1]);
        var dv = s.Scan(s.Pack(k, s.Rq, 1f, 1f, queries: false), s.Pack(q, s.Rq, (float)a[1], (float)a[0], queries: true), s.Rq, gHat, s.Cv, reverse: true);
        var dqOut = dq.narrow(1, s.Offset, s.Nq).narrow(2, 0, s.D).mul_(a[1]).reshape(s.B, s.H, s.Nq, s.D);
        var dkOut = dk.narrow(2, 0, s.D).reshape(s.B, s.H, s.Nk, s.D);
        var dvOut = dv.narrow(2, 0, s.Dv).reshape(s.B, s.H, s.Nk, s.Dv);
        return (dqOut.MoveToOuterDisposeScope(), dkOut.MoveToOuterDisposeScope(), dvOut.MoveToOuterDisposeScope());
    }

    /// <summary>The sizes of one call and the padded buffers its scans read.</summary>
    sealed class Shapes
    {
        public long B, H, Slices, Nq, Nk, Offset;
        public int D, Dv, Rq, Rv, Cd, Cv;

        public Shapes(Tensor q, Tensor v)
        {
            (B, H, Nq, D) = (q.size(0), q.size(1), q.size(2), (int)q.size(3));
            (Nk, Dv) = (v.size(2), (int)v.size(3));
            (Slices, Offset) = (B * H, Nk - Nq);
            (Rq, Rv) = (CausalScan.Padded(D + 1, CausalScan.RowGroup), CausalScan.Padded(Dv + 1, CausalScan.RowGroup));
            (Cd, Cv) = (CausalScan.Padded(D, CausalScan.Panel), CausalScan.Padded(Dv, CausalScan.Panel));
        }

        /// <summary>
        /// x [B, H, N, c] (N = Nq for queries, Nk otherwise) as [S, Nk, width] rows [scale·x_t, appended, 0, …]; query rows
        /// start at the key offset, the positions before it are zeros.
        /// </summary>
        public Tensor Pack(Tensor x, int width, float scale, float? appended, bool queries)
        {
            var packed = empty(new[] { Slices, Nk, (long)width }, dtype: ScalarType.Float32);
            var source = x.contiguous();
            float* from = SimdGemm.Address(source), to = SimdGemm.Address(packed);
            long n = x.size(2), first = queries ? Offset : 0, nk = Nk;
            int c = (int)x.size(3);
            bool append = appended.HasValue;
            float one = appended ?? 0f;
            ForItems(Slices, 1, (double)Nk * width, (slice, _) =>
            {
                float* target = to + slice * nk * width;
                new Span<float>(target, (int)(first * width)).Clear();
                PackRows(from + slice * n * c, c, target + first * width, width, n, scale, append, one);
            });
            GC.KeepAlive(source);
            return packed;
        }

        /// <summary>
        /// x [B, H, Nk, c] as the [S, Nk, c] rows a scan reads, without a copy, where c is already a multiple of the scan's panel
        /// (D = 32, 64, …) and x is contiguous; null otherwise (then <see cref="Pack"/> pads a copy).
        /// </summary>
        public Tensor? Rows(Tensor x) =>
            x.is_contiguous() && x.size(3) % CausalScan.Panel == 0 && x.size(2) == Nk ? x.view(Slices, Nk, x.size(3)) : null;

        /// <summary>n rows of c floats as rows of <paramref name="width"/>: [scale·x_t, appended (when <paramref name="append"/>), 0, …].</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void PackRows(float* row, int c, float* target, int width, long n, float scale, bool append, float appended)
        {
            for (long t = 0; t < n; t++, row += c, target += width)
            {
                RowZmm.Scale(row, scale, target, c);
                int filled = c;
                if (append) target[filled++] = appended;
                for (int j = filled; j < width; j++) target[j] = 0f;
            }
        }

        /// <summary>Ĝ′ = [Ĝ, −r, 0, …] [S, Nk, Rv] and Ĝ [S, Nk, Cv] with Ĝ = dL/do / g and r = Ĝ·o, zeros before the offset.</summary>
        public (Tensor GPrime, Tensor GHat) ScaledOutputGradients(Tensor o, Tensor g, Tensor gradOutput)
        {
            // Written row by row below; only the leading rows (before the offset) and the padding columns are cleared.
            var gPrime = empty(new[] { Slices, Nk, (long)Rv }, dtype: ScalarType.Float32);
            var gHat = empty(new[] { Slices, Nk, (long)Cv }, dtype: ScalarType.Float32);
            float* po = SimdGemm.Address(o), pg = SimdGemm.Address(g), pd = SimdGemm.Address(gradOutput);
            float* pp = SimdGemm.Address(gPrime), ph = SimdGemm.Address(gHat);
            var (nq, nk, offset, dv, rv, cv) = (Nq, Nk, Offset, Dv, Rv, Cv);
            ForItems(Slices, 1, (double)Nk * (Rv + Cv), (slice, _) =>
            {
                new Span<float>(pp + slice * nk * rv, (int)(offset * rv)).Clear();
                new Span<float>(ph + slice * nk * cv, (int)(offset * cv)).Clear();
                for (long i = 0; i < nq; i++)
                {
                    long token = slice * nq + i, row = slice * nk + offset + i;
                    float* scaled = ph + row * cv, prime = pp + row * rv;
                    RowZmm.Divide(pd + token * dv, pg[token], scaled, dv);
                    for (int j = dv; j < cv; j++) scaled[j] = 0f;
                    RowZmm.Scale(scaled, 1f, prime, dv);
                    prime[dv] = -RowZmm.Dot(scaled, po + token * dv, dv);
                    for (int j = dv + 1; j < rv; j++) prime[j] = 0f;
                }
            });
            GC.KeepAlive(o); GC.KeepAlive(g); GC.KeepAlive(gradOutput);
            return (gPrime, gHat);
        }

        /// <summary>out [S, Nk, cols] with out_t = Σ_{s ≤ t} (x_t·y_s) w_s (s ≥ t when reversed), one work item per slice and panel.</summary>
        public Tensor Scan(Tensor x, Tensor y, int rows, Tensor w, int cols, bool reverse)
        {
            var output = empty(new[] { Slices, Nk, (long)cols }, dtype: ScalarType.Float32);
            float* px = SimdGemm.Address(x), py = SimdGemm.Address(y), pw = SimdGemm.Address(w), pout = SimdGemm.Address(output);
            long nk = Nk;
            ForItems(Slices, cols / CausalScan.Panel, (double)nk * rows * cols, (slice, panel) =>
                CausalScan.Product(px + slice * nk * rows, py + slice * nk * rows, rows, pw + slice * nk * cols, pout + slice * nk * cols,
                    cols, (int)nk, panel, reverse));
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
