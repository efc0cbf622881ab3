using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// The causal product out_t = Σ_{s ≤ t} (x_t·y_s) w_s (or Σ_{s ≥ t} when reversed) as one pass over the tokens with the
/// running state Σ_s y_sᵀ w_s in AVX-512 registers: order-1 causal Fastmax and its three gradients are all of this form
/// (<see cref="FirstOrderCausalScans"/>). Per token it does the same multiply-adds as the unmasked closed form
/// (one rank-1 state update and one vector-matrix product), with no chunk blocks and no mask. Float32 only; the state's
/// rows go 8 at a time (x and y padded with zero rows to a multiple of 8) and its columns 16 at a time (w and out padded
/// with zero columns to a multiple of 16). <see cref="Reference"/> is the same sum written as loops over s ≤ t.
/// </summary>
internal static unsafe class CausalScan
{
    public const int RowGroup = 8;
    public const int Panel = 16;

    /// <summary>Rows (or columns) rounded up to the kernel's multiple.</summary>
    public static int Padded(int count, int multiple) => (count + multiple - 1) / multiple * multiple;

    /// <summary>
    /// out [n × cols] = Σ_{s ≤ t} (x_t·y_s) w_s for the 16 columns of <paramref name="panel"/>; x, y [n × rows]
    /// (rows a multiple of 8), w and out [n × cols] (cols a multiple of 16), all row-major and unit-stride.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Product(float* x, float* y, int rows, float* w, float* output, int cols, int n, int panel, bool reverse)
    {
        long step = reverse ? -1 : 1;
        long first = reverse ? n - 1 : 0;
        for (int group = 0; group < rows; group += RowGroup)
        {
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
            float* xt = x + first * rows + group, yt = y + first * rows + group;
            float* wt = w + first * cols + panel * Panel, ot = output + first * cols + panel * Panel;
            long rowStep = step * rows, colStep = step * cols;
            bool accumulate = group > 0;
            for (int i = 0; i < n; i++, xt += rowStep, yt += rowStep, wt += colStep, ot += colStep)
            {
                var wv = Vector512.Load(wt);
                s0 = Vector512.FusedMultiplyAdd(Vector512.Create(yt[0]), wv, s0);
                s1 = Vector512.FusedMultiplyAdd(Vector512.Create(yt[1]), wv, s1);
                s2 = Vector512.FusedMultiplyAdd(Vector512.Create(yt[2]), wv, s2);
                s3 = Vector512.FusedMultiplyAdd(Vector512.Create(yt[3]), wv, s3);
                s4 = Vector512.FusedMultiplyAdd(Vector512.Create(yt[4]), wv, s4);
                s5 = Vector512.FusedMultiplyAdd(Vector512.Create(yt[5]), wv, s5);
                s6 = Vector512.FusedMultiplyAdd(Vector512.Create(yt[6]), wv, s6);
                s7 = Vector512.FusedMultiplyAdd(Vector512.Create(yt[7]), wv, s7);
                // Two chains of four, so a token's output waits on four dependent multiply-adds rather than eight.
                var even = Vector512.FusedMultiplyAdd(Vector512.Create(xt[0]), s0, accumulate ? Vector512.Load(ot) : default);
                var odd = Vector512.Create(xt[1]) * s1;
                even = Vector512.FusedMultiplyAdd(Vector512.Create(xt[2]), s2, even);
                odd = Vector512.FusedMultiplyAdd(Vector512.Create(xt[3]), s3, odd);
                even = Vector512.FusedMultiplyAdd(Vector512.Create(xt[4]), s4, even);
                odd = Vector512.FusedMultiplyAdd(Vector512.Create(xt[5]), s5, odd);
                even = Vector512.FusedMultiplyAdd(Vector512.Create(xt[6]), s6, even);
                odd = Vector512.FusedMultiplyAdd(Vector512.Create(xt[7]), s7, odd);
                (even + odd).Store(ot);
            }
        }
    }

    /// <summary>g_t = x_t·Σ_{s ≤ t} y_s for x, y [n × rows] (rows a multiple of 8): the causal denominator.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Sums(float* x, float* y, int rows, float* g, int n)
    {
        var running = stackalloc float[rows];
        new Span<float>(running, rows).Clear();
        for (long t = 0; t < n; t++)
        {
            float* xt = x + t * rows, yt = y + t * rows;
            var dot = Vector256<float>.Zero;
            for (int r = 0; r < rows; r += RowGroup)
            {
                var sum = Vector256.Load(running + r) + Vector256.Load(yt + r);
                sum.Store(running + r);
                dot = Vector256.FusedMultiplyAdd(Vector256.Load(xt + r), sum, dot);
            }
            g[t] = Vector256.Sum(dot);
        }
    }

    /// <summary>The same product as <see cref="Product"/> over all columns, as plain loops over t and s (O(n²·rows·cols)).</summary>
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
