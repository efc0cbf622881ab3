using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// What the per-token loops (<see cref="PackedFeatureLoops"/>, <see cref="MaxNormLoops"/>) share: which tensors they
/// read directly, their memory as spans, the split of tokens over threads, and short vector kernels.
/// </summary>
internal static class TokenLoops
{
    /// <summary>
    /// True where a per-token loop takes these tensors: CPU float tensors within one span, no autograd graph asked of them.
    /// </summary>
    public static bool Supports(params Tensor[] inputs) =>
        inputs.All(Readable)
        && inputs.All(t => t.numel() * t.ElementSize < int.MaxValue)
        && !(is_grad_enabled() && inputs.Any(t => t.requires_grad));

    /// <summary>
    /// True where a loop writing <paramref name="outputElements"/> entries takes these inputs: the first is readable (CPU,
    /// float32 or float64), it and the output fit one span, and no autograd graph is asked of any input.
    /// </summary>
    public static bool SupportsOutput(long outputElements, params Tensor[] inputs) =>
        Readable(inputs[0])
        && outputElements * inputs[0].ElementSize < int.MaxValue && inputs[0].numel() * inputs[0].ElementSize < int.MaxValue
        && !(is_grad_enabled() && inputs.Any(t => t.requires_grad));

    /// <summary>True for tensors these loops can read directly: CPU memory in float32 or float64.</summary>
    public static bool Readable(Tensor x) =>
        x.device_type == DeviceType.CPU && x.dtype is ScalarType.Float32 or ScalarType.Float64;

    /// <summary>Whether <see cref="ScaledOutputGradients"/> takes o, g, dL/do: one dtype, and Ĝ′ within one span too.</summary>
    public static bool SupportsScaledOutputGradients(Tensor o, Tensor g, Tensor gradOutput) =>
        Supports(o, g, gradOutput) && g.dtype == o.dtype && gradOutput.dtype == o.dtype && o.numel() > 0
        && (o.numel() + g.numel()) * o.ElementSize < int.MaxValue;

    /// <summary>
    /// Ĝ = dO / g and Ĝ′ = [Ĝ, −Ĝ·o] in one pass over the tokens (Ĝ is a view of Ĝ′'s first Dv columns);
    /// <see cref="FastmaxFactorized.ScaledOutputGradientsByTensorOps"/> is the reference.
    /// </summary>
    public static (Tensor GHat, Tensor GPrime) ScaledOutputGradients(Tensor o, Tensor g, Tensor gradOutput)
    {
        long dv = o.size(-1);
        using var oc = o.contiguous();
        using var gc = g.contiguous();
        using var dc = gradOutput.contiguous();
        var shape = o.Shape().ToArray();
        shape[^1] = dv + 1;
        var gPrime = empty(shape, dtype: o.dtype, device: o.device);
        if (o.dtype == ScalarType.Float32 && System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated) ScaledOutputGradientRowsZmm(oc, gc, dc, gPrime, (int)dv);
        else if (o.dtype == ScalarType.Float32) ScaledOutputGradientRows<float>(oc, gc, dc, gPrime, (int)dv);
        else ScaledOutputGradientRows<double>(oc, gc, dc, gPrime, (int)dv);
        return (gPrime.narrow(-1, 0, dv), gPrime);
    }

    /// <summary>The float32 rows on pointers in zmm registers (<see cref="RowZmm"/>), where the span helpers are not inlined.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void ScaledOutputGradientRowsZmm(Tensor o, Tensor g, Tensor gradOutput, Tensor gPrime, int dv)
    {
        fixed (float* po = Elements<float>(o), pg = Elements<float>(g), pd = Elements<float>(gradOutput), pp = Elements<float>(gPrime))
            for (long t = 0, tokens = g.numel(); t < tokens; t++)
            {
                float* row = pp + t * (dv + 1);
                RowZmm.Divide(pd + t * dv, pg[t], row, dv);
                row[dv] = -RowZmm.Dot(row, po + t * dv, dv);
            }
    }

    /// <summary>
    /// Whether <see cref="AddThenDivideRows"/> takes the rows x and b [B, H, G, c, Dv + 1] (contiguous) and the outputs o
    /// [B, H, G·c, Dv] and g [B, H, G·c] (any layout with unit-stride rows): one dtype, no autograd graph.
    /// </summary>
    public static bool SupportsAddThenDivideRows(Tensor x, Tensor b, Tensor o, Tensor g) =>
        Supports(x, b, o, g) && b.dtype == x.dtype && o.dtype == x.dtype && g.dtype == x.dtype
        && x.is_contiguous() && b.is_contiguous() && x.Shape().SequenceEqual(b.Shape()) && x.dim() == 5 && o.dim() == 4 && g.dim() == 3
        && o.size(0) == x.size(0) && o.size(1) == x.size(1) && o.size(2) == x.size(2) * x.size(3) && o.size(3) == x.size(4) - 1
        && g.size(0) == o.size(0) && g.size(1) == o.size(1) && g.size(2) == o.size(2)
        && (o.stride(3) == 1 || o.size(3) <= 1);

    /// <summary>
    /// [numerator, g] = x + b for each token, written as o = numerator / g and g (the causal kernel's in-chunk rows plus its
    /// projection of the state before the chunk), in one pass; the tensor-op form (add, copy g, copy and divide o) is the reference.
    /// Bit for bit that form: the same sums and the same divisions.
    /// </summary>
    public static unsafe void AddThenDivideRows(Tensor x, Tensor b, Tensor o, Tensor g)
    {
        if (o.numel() == 0 && g.numel() == 0) return;
        if (x.dtype == ScalarType.Float32) AddThenDivideRows<float>(x, b, o, g);
        else AddThenDivideRows<double>(x, b, o, g);
        GC.KeepAlive(x); GC.KeepAlive(b); GC.KeepAlive(o); GC.KeepAlive(g);
    }

    /// <summary>The rows of <see cref="AddThenDivideRows(Tensor, Tensor, Tensor, Tensor)"/>; float32 rows in zmm registers where the CPU has them (<see cref="RowZmm"/>).</summary>
    static unsafe void AddThenDivideRows<T>(Tensor x, Tensor b, Tensor o, Tensor g) where T : unmanaged, INumber<T>
    {
        int dv = (int)o.size(3);
        long heads = o.size(0) * o.size(1), rows = o.size(2), oLd = o.stride(2), gLd = g.stride(2);
        using var gColumn = g.unsqueeze(-1);                                           // [B, H, G·c, 1]: its slices as o's
        long[] oOffsets = SimdGemm.SliceOffsets(o, 4, heads), gOffsets = SimdGemm.SliceOffsets(gColumn, 4, heads);
        T* px = (T*)SimdGemm.Address(x), pb = (T*)SimdGemm.Address(b), po = (T*)SimdGemm.Address(o), pg = (T*)SimdGemm.Address(g);
        bool zmm = typeof(T) == typeof(float) && System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated;
        ForTokenRanges(heads * rows, dv + 1, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, count) =>
        {
            for (long t = first; t < first + count; t++)
            {
                long head = t / rows, row = t % rows;
                T* xr = px + t * (dv + 1), br = pb + t * (dv + 1), target = po + oOffsets[head] + row * oLd;
                T sum = xr[dv] + br[dv];
                pg[gOffsets[head] + row * gLd] = sum;
                if (zmm) RowZmm.AddThenDivide((float*)xr, (float*)br, Unsafe.As<T, float>(ref sum), (float*)target, dv);
                else AddThenDivide<T>(new ReadOnlySpan<T>(xr, dv), new ReadOnlySpan<T>(br, dv), sum, new Span<T>(target, dv));
            }
        });
    }

    static void ScaledOutputGradientRows<T>(Tensor o, Tensor g, Tensor gradOutput, Tensor gPrime, int dv) where T : unmanaged, INumber<T>
    {
        Span<T> os = Elements<T>(o), gs = Elements<T>(g), ds = Elements<T>(gradOutput), ps = Elements<T>(gPrime);
        for (int t = 0; t < gs.Length; t++)
        {
            var row = ps.Slice(t * (dv + 1), dv + 1);
            Divide<T>(ds.Slice(t * dv, dv), gs[t], row[..dv]);
            row[dv] = -Dot<T>(row[..dv], os.Slice(t * dv, dv));
        }
    }

    // The arithmetic is written out as System.Numerics vector loops rather than calls to TensorPrimitives
    // (System.Numerics.Tensors). The spans are short (Rows = 17 and D̃ = 33 entries at D = 32), where its fixed cost per
    // call was most of the time (PERF.md). And these loops are compiled fully optimized on first use, where a tiered library call left the first ten forward
    // calls up to twice as slow.

    /// <summary>y = s·x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Scale<T>(ReadOnlySpan<T> x, T s, Span<T> y) where T : unmanaged, INumber<T>
    {
        ref T xs = ref MemoryMarshal.GetReference(x);
        ref T ys = ref MemoryMarshal.GetReference(y);
        int i = 0;
        var sv = new Vector<T>(s);
        for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
            Vector.StoreUnsafe(Vector.LoadUnsafe(ref xs, (nuint)i) * sv, ref ys, (nuint)i);
        for (; i < x.Length; i++) y[i] = x[i] * s;
    }

    /// <summary>y = a ⊙ b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Multiply<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, INumber<T>
    {
        ref T ar = ref MemoryMarshal.GetReference(a);
        ref T br = ref MemoryMarshal.GetReference(b);
        ref T yr = ref MemoryMarshal.GetReference(y);
        int i = 0;
        for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count)
            Vector.StoreUnsafe(Vector.LoadUnsafe(ref ar, (nuint)i) * Vector.LoadUnsafe(ref br, (nuint)i), ref yr, (nuint)i);
        for (; i < a.Length; i++) y[i] = a[i] * b[i];
    }

    /// <summary>a · b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static T Dot<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b) where T : unmanaged, INumber<T>
    {
        ref T ar = ref MemoryMarshal.GetReference(a);
        ref T br = ref MemoryMarshal.GetReference(b);
        var sum = Vector<T>.Zero;
        int i = 0;
        for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count)
            sum += Vector.LoadUnsafe(ref ar, (nuint)i) * Vector.LoadUnsafe(ref br, (nuint)i);
        T result = Vector.Sum(sum);
        for (; i < a.Length; i++) result += a[i] * b[i];
        return result;
    }

    /// <summary>acc += a ⊙ b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void MultiplyAdd<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> acc) where T : unmanaged, INumber<T>
    {
        ref T ar = ref MemoryMarshal.GetReference(a);
        ref T br = ref MemoryMarshal.GetReference(b);
        ref T cr = ref MemoryMarshal.GetReference(acc);
        int i = 0;
        for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count)
            Vector.StoreUnsafe(Vector.LoadUnsafe(ref cr, (nuint)i) + Vector.LoadUnsafe(ref ar, (nuint)i) * Vector.LoadUnsafe(ref br, (nuint)i), ref cr, (nuint)i);
        for (; i < a.Length; i++) acc[i] += a[i] * b[i];
    }

    /// <summary>Σ x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static T Sum<T>(ReadOnlySpan<T> x) where T : unmanaged, INumber<T>
    {
        ref T xs = ref MemoryMarshal.GetReference(x);
        var sum = Vector<T>.Zero;
        int i = 0;
        for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
            sum += Vector.LoadUnsafe(ref xs, (nuint)i);
        T result = Vector.Sum(sum);
        for (; i < x.Length; i++) result += x[i];
        return result;
    }

    /// <summary>y = α·a + β·b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Combine<T>(ReadOnlySpan<T> a, T alpha, ReadOnlySpan<T> b, T beta, Span<T> y) where T : unmanaged, INumber<T>
    {
        ref T ar = ref MemoryMarshal.GetReference(a);
        ref T br = ref MemoryMarshal.GetReference(b);
        ref T yr = ref MemoryMarshal.GetReference(y);
        var (av, bv) = (new Vector<T>(alpha), new Vector<T>(beta));
        int i = 0;
        for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count)
            Vector.StoreUnsafe(Vector.LoadUnsafe(ref ar, (nuint)i) * av + Vector.LoadUnsafe(ref br, (nuint)i) * bv, ref yr, (nuint)i);
        for (; i < a.Length; i++) y[i] = alpha * a[i] + beta * b[i];
    }

    /// <summary>y = x / s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Divide<T>(ReadOnlySpan<T> x, T s, Span<T> y) where T : unmanaged, INumber<T>
    {
        ref T xs = ref MemoryMarshal.GetReference(x);
        ref T ys = ref MemoryMarshal.GetReference(y);
        var sv = new Vector<T>(s);
        int i = 0;
        for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
            Vector.StoreUnsafe(Vector.LoadUnsafe(ref xs, (nuint)i) / sv, ref ys, (nuint)i);
        for (; i < x.Length; i++) y[i] = x[i] / s;
    }

    /// <summary>y = (x + b) / s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void AddThenDivide<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> b, T s, Span<T> y) where T : unmanaged, INumber<T>
    {
        ref T xs = ref MemoryMarshal.GetReference(x);
        ref T bs = ref MemoryMarshal.GetReference(b);
        ref T ys = ref MemoryMarshal.GetReference(y);
        var sv = new Vector<T>(s);
        int i = 0;
        for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
            Vector.StoreUnsafe((Vector.LoadUnsafe(ref xs, (nuint)i) + Vector.LoadUnsafe(ref bs, (nuint)i)) / sv, ref ys, (nuint)i);
        for (; i < x.Length; i++) y[i] = (x[i] + b[i]) / s;
    }

    /// <summary>acc += x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Accumulate<T>(ReadOnlySpan<T> x, Span<T> acc) where T : unmanaged, INumber<T>
    {
        ref T xs = ref MemoryMarshal.GetReference(x);
        ref T cs = ref MemoryMarshal.GetReference(acc);
        int i = 0;
        for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
            Vector.StoreUnsafe(Vector.LoadUnsafe(ref cs, (nuint)i) + Vector.LoadUnsafe(ref xs, (nuint)i), ref cs, (nuint)i);
        for (; i < x.Length; i++) acc[i] += x[i];
    }

    /// <summary>y = x + s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Shift<T>(ReadOnlySpan<T> x, T s, Span<T> y) where T : unmanaged, INumber<T>
    {
        ref T xs = ref MemoryMarshal.GetReference(x);
        ref T ys = ref MemoryMarshal.GetReference(y);
        var sv = new Vector<T>(s);
        int i = 0;
        for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
            Vector.StoreUnsafe(Vector.LoadUnsafe(ref xs, (nuint)i) + sv, ref ys, (nuint)i);
        for (; i < x.Length; i++) y[i] = x[i] + s;
    }

    /// <summary>A contiguous CPU tensor's elements, without a copy (the caller keeps the tensor alive).</summary>
    internal static Span<T> Elements<T>(Tensor x) where T : unmanaged => MemoryMarshal.Cast<byte, T>(x.bytes);

    /// <summary>
    /// Multiply-adds (or element visits) each extra thread must get before a loop is split (default 2^24). A parallel region
    /// started right after a libtorch op, whose own threads then still spin, can take milliseconds to start, so small loops
    /// stay on one thread (environment.md, "Threads"; the measurements are in PERF.md).
    /// </summary>
    internal static long MinWorkPerThread { get; set; } = 1L << 24;   // settable for the tests of the split paths

    /// <summary>How many threads (at most libtorch's intra-op count and <paramref name="items"/>) a loop of <paramref name="work"/> gets.</summary>
    internal static int ThreadsFor(long items, double work) =>
        (int)Math.Max(1, Math.Min(Math.Min(torch.get_num_threads(), items), work / MinWorkPerThread));

    /// <summary>
    /// Tokens [0, n) in contiguous ranges run in parallel by the threads <see cref="ThreadsFor"/> grants for
    /// <paramref name="workPerToken"/> operations a token: <see cref="PiecesPerThread"/> ranges per thread, taken in turn
    /// (<see cref="SharedPieces"/>), or the whole range at once on one thread.
    /// </summary>
    internal static void ForTokenRanges(long tokens, long workPerToken, Action<long, long> body)
    {
        int threads = ThreadsFor(tokens, (double)tokens * workPerToken);
        if (threads == 1) { body(0, tokens); return; }
        ForRanges(tokens, threads, body);
    }

    /// <summary>Items [0, n) as about <see cref="PiecesPerThread"/> contiguous ranges per thread, shared by <paramref name="threads"/> threads.</summary>
    internal static void ForRanges(long items, int threads, Action<long, long> body)
    {
        long per = Math.Max(1, (items + threads * PiecesPerThread - 1) / (threads * PiecesPerThread));
        SharedPieces.For((items + per - 1) / per, threads, piece => body(piece * per, Math.Min(per, items - piece * per)));
    }

    /// <summary>Ranges per thread in <see cref="ForTokenRanges"/>: enough that a thread starting late leaves its share to the others.</summary>
    const int PiecesPerThread = 8;
}
