using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// Rows ↔ columns of float32 blocks for the token-column kernels (<see cref="TokenColumns"/>): whole 16 × 16 blocks
/// transposed in zmm registers (four rounds of 16 shuffles), the rest element by element. Element by element, these copies
/// took 9 % of a p = 2 forward + backward (perf, N = 4096, D = 32): each element a scalar load and a store 128 bytes from
/// the last. <see cref="ToColumnsByElements"/> and <see cref="FromColumnsByElements"/> are the reference.
/// </summary>
internal static unsafe class RegisterTranspose
{
    const int Block = 16;

    /// <summary>Whether the 16 × 16 register blocks run here (AVX-512F).</summary>
    internal static bool Available => Avx512F.IsSupported;

    /// <summary>
    /// columns[k·stripWidth + t] = rows[t·ld + k] for t &lt; tokens, k &lt; width; for t in [tokens, stripWidth) zeros, so a
    /// partial strip's vectors read no stale tokens.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ToColumns(float* rows, long ld, int tokens, int width, float* columns, int stripWidth)
    {
        int whole = Available ? tokens / Block * Block : 0, blockWidth = width / Block * Block;
        if (whole == 0) blockWidth = 0;
        for (int t0 = 0; t0 < whole; t0 += Block)
            for (int k0 = 0; k0 < blockWidth; k0 += Block)
                Transpose16(rows + t0 * ld + k0, ld, columns + k0 * stripWidth + t0, stripWidth);
        for (int k = blockWidth; k < width; k++)
            for (int t = 0; t < whole; t++) columns[k * stripWidth + t] = rows[t * ld + k];
        for (int k = 0; k < width; k++)
        {
            for (int t = whole; t < tokens; t++) columns[k * stripWidth + t] = rows[t * ld + k];
            for (int t = tokens; t < stripWidth; t++) columns[k * stripWidth + t] = 0f;
        }
    }

    /// <summary>
    /// Whether <see cref="Transposed"/> copies x itself: float32 CPU, rows unit-stride, sizes within int, no autograd graph
    /// wanted, AVX-512F. Elsewhere x.transpose(-1, -2).contiguous() does it.
    /// </summary>
    internal static bool SupportsTransposed(Tensor x) =>
        Available && x.dtype == ScalarType.Float32 && x.device_type == DeviceType.CPU && x.dim() >= 2
        && (x.stride(-1) == 1 || x.size(-1) <= 1) && x.size(-1) <= int.MaxValue && x.size(-2) <= int.MaxValue
        && !(is_grad_enabled() && x.requires_grad);

    /// <summary>
    /// x [..., n, w] → a contiguous [..., w, n], as x.transpose(-1, -2).contiguous(): each slice by 16 × 16 blocks in registers
    /// (<see cref="ToColumns"/>), for the causal kernel's [c, D] chunk blocks, which libtorch's transposing copy moved slowly
    /// (PERF.md, "Chunk blocks transposed in registers"). The tensor-op form is the reference, and the fallback wherever
    /// <see cref="SupportsTransposed"/> does not hold.
    /// </summary>
    internal static Tensor Transposed(Tensor x)
    {
        if (!SupportsTransposed(x)) return x.transpose(-1, -2).contiguous();
        var shape = x.Shape().ToArray();
        (shape[^1], shape[^2]) = (shape[^2], shape[^1]);
        var result = empty(shape, dtype: ScalarType.Float32, device: x.device);
        if (result.numel() == 0) return result;
        int rank = (int)x.dim(), tokens = (int)x.size(-2), width = (int)x.size(-1);
        long slices = result.numel() / ((long)tokens * width);
        var offsets = SimdGemm.SliceOffsets(x, rank, slices);
        float* source = SimdGemm.Address(x), target = SimdGemm.Address(result);
        long ld = x.stride(-2);
        void Run(long first, long count)
        {
            for (long slice = first; slice < first + count; slice++)
                ToColumns(source + offsets[slice], ld, tokens, width, target + slice * tokens * width, tokens);
        }
        int threads = TokenLoops.ThreadsFor(slices, (double)result.numel());
        if (threads <= 1) Run(0, slices);
        else TokenLoops.ForRanges(slices, threads, Run);
        GC.KeepAlive(x);
        return result;
    }

    /// <summary>
    /// rows[t·ld + k] = columns[k·stripWidth + t] for t &lt; tokens, k &lt; width; with <paramref name="add"/>,
    /// rows[t·ld + k] += columns[k·stripWidth + t] (one float32 addition each, as adding the written rows after).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void FromColumns(float* columns, int stripWidth, int tokens, int width, float* rows, long ld, bool add = false)
    {
        int whole = Available ? tokens / Block * Block : 0, blockWidth = width / Block * Block;
        if (whole == 0) blockWidth = 0;
        // Two copies of the loop, each with a constant add, so the inlined blocks carry no branch per row.
        if (add)
            for (int t0 = 0; t0 < whole; t0 += Block)
                for (int k0 = 0; k0 < blockWidth; k0 += Block)
                    Transpose16(columns + k0 * stripWidth + t0, stripWidth, rows + t0 * ld + k0, ld, add: true);
        else
            for (int t0 = 0; t0 < whole; t0 += Block)
                for (int k0 = 0; k0 < blockWidth; k0 += Block)
                    Transpose16(columns + k0 * stripWidth + t0, stripWidth, rows + t0 * ld + k0, ld, add: false);
        for (int t = 0; t < whole; t++)
            for (int k = blockWidth; k < width; k++) Put(rows + t * ld + k, columns[k * stripWidth + t], add);
        for (int t = whole; t < tokens; t++)
            for (int k = 0; k < width; k++) Put(rows + t * ld + k, columns[k * stripWidth + t], add);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Put(float* target, float value, bool add) => *target = add ? *target + value : value;

    /// <summary>The element-by-element form of <see cref="ToColumns"/>.</summary>
    public static void ToColumnsByElements(float* rows, long ld, int tokens, int width, float* columns, int stripWidth)
    {
        for (int k = 0; k < width; k++)
            for (int t = 0; t < stripWidth; t++) columns[k * stripWidth + t] = t < tokens ? rows[t * ld + k] : 0f;
    }

    /// <summary>The element-by-element form of <see cref="FromColumns"/>.</summary>
    public static void FromColumnsByElements(float* columns, int stripWidth, int tokens, int width, float* rows, long ld)
    {
        for (int t = 0; t < tokens; t++)
            for (int k = 0; k < width; k++) rows[t * ld + k] = columns[k * stripWidth + t];
    }

    /// <summary>
    /// target[c·targetLd + r] = source[r·sourceLd + c] for a 16 × 16 block. Rounds one and two interleave rows within each
    /// 128-bit lane (as floats, then as pairs), leaving in u_(4p+j)'s lane L column 4L + j of rows 4p … 4p + 3; rounds three and
    /// four gather lane L of u_j, u_(4+j), u_(8+j), u_(12+j) into output row 4L + j.
    /// </summary>
    /// <remarks>
    /// Compiled fully optimized on first use: the JIT does not inline it even when asked, and under tiered compilation (the
    /// notebooks, the tests) its first calls otherwise ran unoptimized, every vector operation a call (PERF.md, "Tiered compilation").
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Transpose16(float* source, long sourceLd, float* target, long targetLd, bool add = false)
    {
        var r0 = Vector512.Load(source); var r1 = Vector512.Load(source + sourceLd);
        var r2 = Vector512.Load(source + 2 * sourceLd); var r3 = Vector512.Load(source + 3 * sourceLd);
        var r4 = Vector512.Load(source + 4 * sourceLd); var r5 = Vector512.Load(source + 5 * sourceLd);
        var r6 = Vector512.Load(source + 6 * sourceLd); var r7 = Vector512.Load(source + 7 * sourceLd);
        var r8 = Vector512.Load(source + 8 * sourceLd); var r9 = Vector512.Load(source + 9 * sourceLd);
        var r10 = Vector512.Load(source + 10 * sourceLd); var r11 = Vector512.Load(source + 11 * sourceLd);
        var r12 = Vector512.Load(source + 12 * sourceLd); var r13 = Vector512.Load(source + 13 * sourceLd);
        var r14 = Vector512.Load(source + 14 * sourceLd); var r15 = Vector512.Load(source + 15 * sourceLd);

        var (t0, t1) = Interleave(r0, r1); var (t2, t3) = Interleave(r2, r3);
        var (t4, t5) = Interleave(r4, r5); var (t6, t7) = Interleave(r6, r7);
        var (t8, t9) = Interleave(r8, r9); var (t10, t11) = Interleave(r10, r11);
        var (t12, t13) = Interleave(r12, r13); var (t14, t15) = Interleave(r14, r15);

        var (u0, u1) = InterleavePairs(t0, t2); var (u2, u3) = InterleavePairs(t1, t3);
        var (u4, u5) = InterleavePairs(t4, t6); var (u6, u7) = InterleavePairs(t5, t7);
        var (u8, u9) = InterleavePairs(t8, t10); var (u10, u11) = InterleavePairs(t9, t11);
        var (u12, u13) = InterleavePairs(t12, t14); var (u14, u15) = InterleavePairs(t13, t15);

        Column(u0, u4, u8, u12, target, targetLd, add);
        Column(u1, u5, u9, u13, target + targetLd, targetLd, add);
        Column(u2, u6, u10, u14, target + 2 * targetLd, targetLd, add);
        Column(u3, u7, u11, u15, target + 3 * targetLd, targetLd, add);
    }

    /// <summary>
    /// Output rows j, 4 + j, 8 + j, 12 + j (at target, stride 4·ld) from u_j, u_(4+j), u_(8+j), u_(12+j); added to what the
    /// rows hold when <paramref name="add"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Column(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d, float* target, long ld, bool add)
    {
        var (evenAb, oddAb) = (Avx512F.Shuffle4x128(a, b, 0x88), Avx512F.Shuffle4x128(a, b, 0xDD));   // lanes 0, 2 / 1, 3 of a, then of b
        var (evenCd, oddCd) = (Avx512F.Shuffle4x128(c, d, 0x88), Avx512F.Shuffle4x128(c, d, 0xDD));
        Put(target, Avx512F.Shuffle4x128(evenAb, evenCd, 0x88), add);            // lane 0 of a, b, c, d
        Put(target + 4 * ld, Avx512F.Shuffle4x128(oddAb, oddCd, 0x88), add);     // lane 1
        Put(target + 8 * ld, Avx512F.Shuffle4x128(evenAb, evenCd, 0xDD), add);   // lane 2
        Put(target + 12 * ld, Avx512F.Shuffle4x128(oddAb, oddCd, 0xDD), add);    // lane 3
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Put(float* target, Vector512<float> row, bool add) => (add ? Vector512.Load(target) + row : row).Store(target);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static (Vector512<float>, Vector512<float>) Interleave(Vector512<float> a, Vector512<float> b) =>
        (Avx512F.UnpackLow(a, b), Avx512F.UnpackHigh(a, b));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static (Vector512<float>, Vector512<float>) InterleavePairs(Vector512<float> a, Vector512<float> b) =>
        (Avx512F.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle(), Avx512F.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle());
}
