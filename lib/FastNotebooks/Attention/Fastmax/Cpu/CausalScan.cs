using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// The causal product out_t = Σ_{s ≤ t} (x′_t·y′_s) w_s (or Σ_{s ≥ t} when reversed) as one pass over the tokens with the
/// running state Σ_s y′_sᵀ w_s in AVX-512 registers: order-1 causal Fastmax and its three gradients are all of this form
/// (<see cref="FirstOrderCausalScans"/>). Per token it does the same multiply-adds as the unmasked closed form
/// (one rank-1 state update and one vector-matrix product), with no chunk blocks and no mask. Float32 only.
/// Each of these products pairs d-wide rows with one appended entry (q′ = [a1·q, a0], k′ = [k, 1], Ĝ′ = [Ĝ, −r], v′ = [v, 1]), so
/// x′_t = [scale·x_t, e^x_t] and y′_s = [y_s, e^y_s]: the rows x, y are read as they are (rows a multiple of 8, any row stride),
/// the appended entries come apart (<see cref="Extra"/>: one constant or one per token), and the scale multiplies the rows' part.
/// The state's rows go 8 at a time, the appended one with the last 8 (padding d + 1 to a multiple of 8 made 40 rows of 33
/// at D = 32); its columns 16 at a time (w and out padded with zero columns to a multiple of 16).
/// <see cref="Reference"/> is the same sum written as loops over s ≤ t on the whole rows x′, y′.
/// </summary>
internal static unsafe class CausalScan
{
    public const int RowGroup = 8;
    public const int Panel = 16;

    /// <summary>Rows (or columns) rounded up to the kernel's multiple.</summary>
    public static int Padded(int count, int multiple) => (count + multiple - 1) / multiple * multiple;

    /// <summary>
    /// The appended entries e^x_t = X[t·XStride] and e^y_s = Y[s·YStride] (stride 0: one constant for every token); <see cref="None"/>
    /// for products without them.
    /// </summary>
    public readonly struct Extra(float* x, long xStride, float* y, long yStride)
    {
        public readonly float* X = x, Y = y;
        public readonly long XStride = xStride, YStride = yStride;
        public static Extra None => default;
        public bool Present => X != null;

        /// <summary>The same entries for the slice whose tokens start at token <paramref name="first"/> (constants stay where they are).</summary>
        public Extra From(long first) => Present ? new(X + first * XStride, XStride, Y + first * YStride, YStride) : this;
    }

    /// <summary>
    /// out [n × cols] = Σ_{s ≤ t} (x′_t·y′_s) w_s for the 16 columns of each of <paramref name="panels"/> (1 or 2) panels from
    /// <paramref name="firstPanel"/>: x, y [n × rows] at row strides ldx, ldy (rows a multiple of 8), w and out [n × cols] (cols a
    /// multiple of 16), row-major and unit-stride along a row. Two panels share one pass over the tokens: each of x's and y's
    /// entries is read once for 32 columns.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Product(float* x, long ldx, float* y, long ldy, int rows, Extra extra, float scale, float* w, float* output, int cols, int n,
        int firstPanel, int panels, bool reverse)
    {
        if (rows <= 0 || rows % RowGroup != 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "the rows must be a positive multiple of 8");
        if (panels is not (1 or 2) || (firstPanel + panels) * Panel > cols)
            throw new ArgumentOutOfRangeException(nameof(panels), panels, $"one or two panels from panel {firstPanel} within {cols} columns");
        long step = reverse ? -1 : 1, first = reverse ? n - 1 : 0;
        for (int group = 0; group < rows; group += RowGroup)
        {
            float* xt = x + first * ldx + group, yt = y + first * ldy + group;
            float* wt = w + first * cols + firstPanel * Panel, ot = output + first * cols + firstPanel * Panel;
            var (xStep, yStep, colStep, accumulate) = (step * ldx, step * ldy, step * cols, group > 0);
            if (group + RowGroup < rows)
            {
                if (panels == 2) Group<Two>(xt, yt, xStep, yStep, wt, ot, colStep, n, accumulate);
                else Group<One>(xt, yt, xStep, yStep, wt, ot, colStep, n, accumulate);
            }
            else if (panels == 2) LastGroup<Two>(xt, yt, xStep, yStep, extra.From(first), step, scale, wt, ot, colStep, n, accumulate);
            else LastGroup<One>(xt, yt, xStep, yStep, extra.From(first), step, scale, wt, ot, colStep, n, accumulate);
        }
    }

    /// <summary>How many panels a pass carries, fixed when the pass is compiled.</summary>
    interface IPanels { static abstract bool Second { get; } }
    struct One : IPanels { public static bool Second => false; }
    struct Two : IPanels { public static bool Second => true; }

    /// <summary>
    /// Eight state rows over all tokens: out_t (+)= Σ_r x_t[r]·state_r after state_r += y_t[r]·w_t, for one or two panels. Kept apart
    /// from <see cref="LastGroup{TPanels}"/>: one generic loop for both ran the backward's scans slower (PERF.md, "Tried and left out").
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Group<TPanels>(float* xt, float* yt, long xStep, long yStep, float* wt, float* ot, long colStep, int n, bool accumulate)
        where TPanels : struct, IPanels
    {
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
        Vector512<float> u0 = default, u1 = default, u2 = default, u3 = default, u4 = default, u5 = default, u6 = default, u7 = default;
        for (int i = 0; i < n; i++, xt += xStep, yt += yStep, wt += colStep, ot += colStep)
        {
            var wv = Vector512.Load(wt);
            Update(yt, wv, ref s0, ref s1, ref s2, ref s3, ref s4, ref s5, ref s6, ref s7);
            Query(xt, s0, s1, s2, s3, s4, s5, s6, s7, accumulate ? Vector512.Load(ot) : default).Store(ot);
            if (TPanels.Second)
            {
                var wu = Vector512.Load(wt + Panel);
                Update(yt, wu, ref u0, ref u1, ref u2, ref u3, ref u4, ref u5, ref u6, ref u7);
                Query(xt, u0, u1, u2, u3, u4, u5, u6, u7, accumulate ? Vector512.Load(ot + Panel) : default).Store(ot + Panel);
            }
        }
    }

    /// <summary>
    /// The last eight state rows and the appended one: out_t = scale·(earlier groups' sum + Σ_r x_t[r]·state_r) + e^x_t·state_e, with
    /// state_e += e^y_t·w_t, for one or two panels.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void LastGroup<TPanels>(float* xt, float* yt, long xStep, long yStep, Extra extra, long step, float scale, float* wt, float* ot, long colStep,
        int n, bool accumulate) where TPanels : struct, IPanels
    {
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default, se = default;
        Vector512<float> u0 = default, u1 = default, u2 = default, u3 = default, u4 = default, u5 = default, u6 = default, u7 = default, ue = default;
        var factor = Vector512.Create(scale);
        bool appended = extra.Present;
        float* ex = extra.X, ey = extra.Y;
        long exStep = step * extra.XStride, eyStep = step * extra.YStride;
        for (int i = 0; i < n; i++, xt += xStep, yt += yStep, wt += colStep, ot += colStep)
        {
            var wv = Vector512.Load(wt);
            Update(yt, wv, ref s0, ref s1, ref s2, ref s3, ref s4, ref s5, ref s6, ref s7);
            var sum = Query(xt, s0, s1, s2, s3, s4, s5, s6, s7, accumulate ? Vector512.Load(ot) : default);
            Vector512<float> wu = default, second = default;
            if (TPanels.Second)
            {
                wu = Vector512.Load(wt + Panel);
                Update(yt, wu, ref u0, ref u1, ref u2, ref u3, ref u4, ref u5, ref u6, ref u7);
                second = Query(xt, u0, u1, u2, u3, u4, u5, u6, u7, accumulate ? Vector512.Load(ot + Panel) : default);
            }
            if (appended)
            {
                var (bx, by) = (Vector512.Create(*ex), Vector512.Create(*ey));
                se = Vector512.FusedMultiplyAdd(by, wv, se);
                sum = Vector512.FusedMultiplyAdd(sum, factor, bx * se);
                if (TPanels.Second)
                {
                    ue = Vector512.FusedMultiplyAdd(by, wu, ue);
                    second = Vector512.FusedMultiplyAdd(second, factor, bx * ue);
                }
                ex += exStep;
                ey += eyStep;
            }
            else
            {
                sum *= factor;
                second *= factor;
            }
            sum.Store(ot);
            if (TPanels.Second) second.Store(ot + Panel);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Update(float* yt, Vector512<float> wv, ref Vector512<float> s0, ref Vector512<float> s1, ref Vector512<float> s2, ref Vector512<float> s3,
        ref Vector512<float> s4, ref Vector512<float> s5, ref Vector512<float> s6, ref Vector512<float> s7)
    {
        s0 = Vector512.FusedMultiplyAdd(Vector512.Create(yt[0]), wv, s0);
        s1 = Vector512.FusedMultiplyAdd(Vector512.Create(yt[1]), wv, s1);
        s2 = Vector512.FusedMultiplyAdd(Vector512.Create(yt[2]), wv, s2);
        s3 = Vector512.FusedMultiplyAdd(Vector512.Create(yt[3]), wv, s3);
        s4 = Vector512.FusedMultiplyAdd(Vector512.Create(yt[4]), wv, s4);
        s5 = Vector512.FusedMultiplyAdd(Vector512.Create(yt[5]), wv, s5);
        s6 = Vector512.FusedMultiplyAdd(Vector512.Create(yt[6]), wv, s6);
        s7 = Vector512.FusedMultiplyAdd(Vector512.Create(yt[7]), wv, s7);
    }

    /// <summary>start + Σ_r x_t[r]·s_r in two chains of four, so a token's output waits on four dependent multiply-adds rather than eight.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Query(float* xt, Vector512<float> s0, Vector512<float> s1, Vector512<float> s2, Vector512<float> s3, Vector512<float> s4,
        Vector512<float> s5, Vector512<float> s6, Vector512<float> s7, Vector512<float> start)
    {
        var even = Vector512.FusedMultiplyAdd(Vector512.Create(xt[0]), s0, start);
        var odd = Vector512.Create(xt[1]) * s1;
        even = Vector512.FusedMultiplyAdd(Vector512.Create(xt[2]), s2, even);
        odd = Vector512.FusedMultiplyAdd(Vector512.Create(xt[3]), s3, odd);
        even = Vector512.FusedMultiplyAdd(Vector512.Create(xt[4]), s4, even);
        odd = Vector512.FusedMultiplyAdd(Vector512.Create(xt[5]), s5, odd);
        even = Vector512.FusedMultiplyAdd(Vector512.Create(xt[6]), s6, even);
        odd = Vector512.FusedMultiplyAdd(Vector512.Create(xt[7]), s7, odd);
        return even + odd;
    }

    /// <summary>
    /// g_t = x′_t·Σ_{s ≤ t} y′_s = scale·(x_t·Σ_{s ≤ t} y_s) + e^x_t·Σ_{s ≤ t} e^y_s for x, y [n × rows] at row strides ldx, ldy
    /// (rows a multiple of 8): the causal denominator.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Sums(float* x, long ldx, float* y, long ldy, int rows, Extra extra, float scale, float* g, int n)
    {
        if (rows <= 0 || rows % RowGroup != 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "the rows must be a positive multiple of 8");
        var running = stackalloc float[rows];
        new Span<float>(running, rows).Clear();
        float appended = 0;
        for (long t = 0; t < n; t++)
        {
            float* xt = x + t * ldx, yt = y + t * ldy;
            var dot = Vector256<float>.Zero;
            for (int r = 0; r < rows; r += RowGroup)
            {
                var sum = Vector256.Load(running + r) + Vector256.Load(yt + r);
                sum.Store(running + r);
                dot = Vector256.FusedMultiplyAdd(Vector256.Load(xt + r), sum, dot);
            }
            float value = scale * Vector256.Sum(dot);
            if (extra.Present)
            {
                appended += extra.Y[t * extra.YStride];
                value += extra.X[t * extra.XStride] * appended;
            }
            g[t] = value;
        }
    }

    /// <summary>The same product as <see cref="Product"/> over all columns, as plain loops over t and s (O(n²·rows·cols)), on whole rows x′, y′ [n × rows].</summary>
    public static void Reference(float* x, float* y, int rows, float* w, float* output, int cols, int n, bool reverse)
    {
        for (int t = 0; t < n; t++)
            for (int s = reverse ? t : 0; s < (reverse ? n : t + 1); s++)
            {
                double score = 0;
                for (int r = 0; r < rows; r++) score += (double)x[t * rows + r] * y[s * rows + r];
                for (int c = 0; c < cols; c++) output[t * cols + c] += (float)(score * w[s * cols + c]);
            }
    }
}
