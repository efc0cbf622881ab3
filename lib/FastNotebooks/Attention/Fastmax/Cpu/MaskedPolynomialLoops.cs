using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.Reference;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// The causal kernel's in-chunk weights as one pass over each chunk's c × c block of scores, in place: f(s) by Horner's rule on
/// and below the diagonal, zeros above it — and, for the backward, f′(s)·(Ĝ′·v′) beside it. The tensor-op form
/// (<see cref="TaylorFeatures.Polynomial"/>, <c>tril_</c>, <c>mul_</c>; its reference) reads and writes every block five to nine
/// times.
/// </summary>
internal static class MaskedPolynomialLoops
{
    /// <summary>True for contiguous CPU float32/float64 blocks [..., c, c] that need no autograd graph.</summary>
    public static bool Supports(params Tensor[] blocks) =>
        TokenLoops.Supports(blocks) && blocks.All(b => b.is_contiguous() && b.dtype == blocks[0].dtype && b.Shape().SequenceEqual(blocks[0].Shape()))
        && blocks[0].dim() >= 2 && blocks[0].size(-1) == blocks[0].size(-2);

    /// <summary>
    /// s ← f(s) on and below each block's diagonal, 0 above it (f's coefficients a_0..a_p); with <paramref name="rowSums"/>
    /// (<see cref="TakesRowSums"/>), each row's sum Σ_j tril f(s)_ij written there as the row is made: the denominator's part
    /// of the block, which a column of ones beside v would otherwise make in the product.
    /// </summary>
    public static unsafe void Polynomial(Tensor scores, double[] a, Tensor? rowSums = null)
    {
        if (rowSums is not null && !TakesRowSums(scores, rowSums))
            throw new ArgumentException($"row sums are a {scores.dtype} [{string.Join(", ", scores.Shape()[..^1])}] whose rows lie a constant stride apart; got {rowSums.dtype} [{string.Join(", ", rowSums.Shape())}] of strides [{string.Join(", ", rowSums.Strides())}]", nameof(rowSums));
        Run(scores, null, a, null, rowSums is null ? null : (byte*)SimdGemm.Address(rowSums), rowSums is null ? 0 : rowSums.stride(-1));
        GC.KeepAlive(rowSums);
    }

    /// <summary>
    /// Whether <see cref="Polynomial"/> can write the row sums of <paramref name="scores"/> [..., c, c] into <paramref name="rowSums"/>:
    /// its shape [..., c] and dtype, on the CPU, row r of the flattened blocks at r times one stride (a column of a contiguous
    /// [..., c, C] tensor, for instance), no autograd graph wanted of it.
    /// </summary>
    public static bool TakesRowSums(Tensor scores, Tensor rowSums)
    {
        if (!rowSums.Shape().SequenceEqual(scores.Shape()[..^1]) || rowSums.dtype != scores.dtype || rowSums.device_type != DeviceType.CPU
            || rowSums.dim() < 1 || (is_grad_enabled() && rowSums.requires_grad)) return false;
        long stride = rowSums.stride(-1), span = rowSums.size(-1);
        if (stride < 1) return false;
        for (int dim = (int)rowSums.dim() - 2; dim >= 0; dim--)
        {
            if (rowSums.size(dim) > 1 && rowSums.stride(dim) != stride * span) return false;
            span *= rowSums.size(dim);
        }
        return true;
    }

    /// <summary>s ← tril(f(s)) and upstream ← tril(f′(s)) ⊙ upstream, for f′'s coefficients b.</summary>
    public static unsafe void PolynomialAndDerivative(Tensor scores, Tensor upstream, double[] a, double[] b) => Run(scores, upstream, a, b, null, 0);

    static unsafe void Run(Tensor scores, Tensor? upstream, double[] a, double[]? b, byte* sums, long sumStride)
    {
        int c = (int)scores.size(-1);
        long rows = scores.numel() / Math.Max(1, c);
        TokenLoops.ForTokenRanges(rows, 4L * c, (start, count) =>
        {
            if (scores.dtype == ScalarType.Float32 && Vector512.IsHardwareAccelerated) RowsAvx512(scores, upstream, a, b, c, start, count, (float*)sums, sumStride);
            else if (scores.dtype == ScalarType.Float32) Rows<float>(scores, upstream, a, b, c, start, count, (float*)sums, sumStride);
            else Rows<double>(scores, upstream, a, b, c, start, count, (double*)sums, sumStride);
        });
    }

    /// <summary>
    /// The float32 rows in zmm registers: the visible columns 16 at a time, the one vector the diagonal cuts computed whole and
    /// its lanes past the diagonal set to zero, the rest of the row zeroed 16 at a time (the generic form runs 8 lanes, a
    /// scalar tail per row and a span clear).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void RowsAvx512(Tensor scores, Tensor? upstream, double[] a, double[]? b, int c, long start, long count, float* sums, long sumStride)
    {
        float* s = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(scores.bytes));
        float* g = upstream is null ? null : (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(upstream.bytes));
        Span<float> fa = stackalloc float[a.Length];
        for (int l = 0; l < a.Length; l++) fa[l] = (float)a[l];
        Span<float> fb = stackalloc float[b?.Length ?? 0];
        for (int l = 0; l < fb.Length; l++) fb[l] = (float)b![l];
        var lanes = Vector512.Create(0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (long row = start; row < start + count; row++)
        {
            int visible = (int)(row % c) + 1;   // columns 0..i of row i of its block
            float* sr = s + row * c, gr = g is null ? null : g + row * c;
            int i = 0;
            var sum = Vector512<float>.Zero;
            float tail = 0;
            for (; i + 16 <= visible; i += 16)
            {
                var x = Vector512.Load(sr + i);
                if (gr is not null) (Horner(x, fb) * Vector512.Load(gr + i)).Store(gr + i);
                var y = Horner(x, fa);
                y.Store(sr + i);
                sum += y;
            }
            if (i < visible)
            {
                if (i + 16 <= c)
                {
                    var keep = Vector512.LessThan(lanes, Vector512.Create((float)(visible - i)));
                    var x = Vector512.Load(sr + i);
                    if (gr is not null) Vector512.ConditionalSelect(keep, Horner(x, fb) * Vector512.Load(gr + i), Vector512<float>.Zero).Store(gr + i);
                    var y = Vector512.ConditionalSelect(keep, Horner(x, fa), Vector512<float>.Zero);
                    y.Store(sr + i);
                    sum += y;
                    i += 16;
                }
                else
                    for (; i < visible; i++)
                    {
                        if (gr is not null) gr[i] *= Horner(sr[i], fb);
                        sr[i] = Horner(sr[i], fa);
                        tail += sr[i];
                    }
            }
            if (sums is not null) sums[row * sumStride] = Vector512.Sum(sum) + tail;
            for (; i + 16 <= c; i += 16)
            {
                Vector512<float>.Zero.Store(sr + i);
                if (gr is not null) Vector512<float>.Zero.Store(gr + i);
            }
            for (; i < c; i++)
            {
                sr[i] = 0;
                if (gr is not null) gr[i] = 0;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Horner(Vector512<float> x, ReadOnlySpan<float> k)
    {
        var acc = Vector512.Create(k[^1]);
        for (int l = k.Length - 2; l >= 0; l--) acc = Vector512.FusedMultiplyAdd(acc, x, Vector512.Create(k[l]));
        return acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Horner(float x, ReadOnlySpan<float> k)
    {
        float acc = k[^1];
        for (int l = k.Length - 2; l >= 0; l--) acc = acc * x + k[l];
        return acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void Rows<T>(Tensor scores, Tensor? upstream, double[] a, double[]? b, int c, long start, long count, T* sums, long sumStride)
        where T : unmanaged, INumber<T>
    {
        var s = TokenLoops.Elements<T>(scores);
        var g = upstream is null ? default : TokenLoops.Elements<T>(upstream);
        Span<T> fa = stackalloc T[a.Length];
        for (int l = 0; l < a.Length; l++) fa[l] = T.CreateChecked(a[l]);
        Span<T> fb = stackalloc T[b?.Length ?? 0];
        for (int l = 0; l < fb.Length; l++) fb[l] = T.CreateChecked(b![l]);
        for (long row = start; row < start + count; row++)
        {
            int visible = (int)(row % c) + 1;   // columns 0..i of row i of its block
            var sr = s.Slice((int)(row * c), c);
            if (upstream is not null)
            {
                var gr = g.Slice((int)(row * c), c);
                Horner<T>(sr.Slice(0, visible), fb, gr.Slice(0, visible), multiply: true);
                gr.Slice(visible).Clear();
            }
            Horner<T>(sr.Slice(0, visible), fa, sr.Slice(0, visible), multiply: false);
            sr.Slice(visible).Clear();
            if (sums is not null)
            {
                T total = T.Zero;
                foreach (var value in sr.Slice(0, visible)) total += value;
                sums[row * sumStride] = total;
            }
        }
    }

    /// <summary>y = Σ_l k_l x^l (or y ⊙= it when <paramref name="multiply"/>), Horner's rule over vectors; y may alias x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Horner<T>(Span<T> x, ReadOnlySpan<T> k, Span<T> y, bool multiply) where T : unmanaged, INumber<T>
    {
        ref T xs = ref MemoryMarshal.GetReference(x);
        ref T ys = ref MemoryMarshal.GetReference(y);
        int i = 0, top = k.Length - 1;
        for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
        {
            var xv = Vector.LoadUnsafe(ref xs, (nuint)i);
            var acc = new Vector<T>(k[top]);
            for (int l = top - 1; l >= 0; l--) acc = acc * xv + new Vector<T>(k[l]);
            if (multiply) acc *= Vector.LoadUnsafe(ref ys, (nuint)i);
            Vector.StoreUnsafe(acc, ref ys, (nuint)i);
        }
        for (; i < x.Length; i++)
        {
            T acc = k[top];
            for (int l = top - 1; l >= 0; l--) acc = acc * x[i] + k[l];
            y[i] = multiply ? acc * y[i] : acc;
        }
    }
}
