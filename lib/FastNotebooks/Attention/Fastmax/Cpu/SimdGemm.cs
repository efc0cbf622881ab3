using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// C = A·B for float32 CPU tensors with AVX-512 register tiles: the Fastmax kernels' GEMMs where the CPU has AVX-512.
/// libtorch's bundled BLAS runs the kernels' thin products (a few thousand tokens by a few hundred features by Dv + 1 columns)
/// far below its rate on large square ones, and asking it for AVX-512 does not change that (PERF.md); a 12 × 32 tile of zmm
/// accumulators, one row of B loaded and one element of A broadcast per step, keeps them near the FMA peak. <c>a.matmul(b)</c> is the
/// reference: every case this class does not take (other dtypes or devices, tensors that need autograd, no AVX-512,
/// rows that are not unit-stride) goes there, and the tests compare the two.
/// </summary>
public static unsafe class SimdGemm
{
    /// <summary>Whether the tiles can run on this processor (AVX-512).</summary>
    internal static bool Available => Vector512.IsHardwareAccelerated;

    /// <summary>Test hook: sees every product this thread's <see cref="MatMul"/> hands to libtorch.</summary>
    [ThreadStatic] internal static Action<Tensor, Tensor>? FallbackObserver;

    const int TileRows = 12;
    const int PanelWidth = 32;      // two zmm of float32
    const int PanelsPerItem = 4;    // columns one work item covers: 128
    const int TilesPerItem = 4;     // rows one work item covers: 48

    /// <summary>
    /// True when <see cref="MatMul"/> computes a·b itself: float32 CPU tensors of equal rank ≥ 2 and equal leading
    /// dims, b's rows unit-stride, a unit-stride along either of its last two dims, no autograd graph wanted, AVX-512.
    /// </summary>
    public static bool Supports(Tensor a, Tensor b)
    {
        if (!Available) return false;
        if (a.dtype != ScalarType.Float32 || b.dtype != ScalarType.Float32) return false;
        if (a.device_type != DeviceType.CPU || b.device_type != DeviceType.CPU) return false;
        if (is_grad_enabled() && (a.requires_grad || b.requires_grad)) return false;
        int rank = (int)a.dim();
        if (rank < 2 || b.dim() != rank || a.size(-1) != b.size(-2)) return false;
        for (int d = 0; d < rank - 2; d++) if (a.Shape()[d] != b.Shape()[d]) return false;
        if (a.size(-1) > int.MaxValue || a.size(-2) > int.MaxValue || b.size(-1) > int.MaxValue) return false;
        bool bRows = b.stride(-1) == 1 || b.size(-1) == 1;
        bool aUnit = a.stride(-1) == 1 || a.stride(-2) == 1 || a.size(-1) == 1 || a.size(-2) == 1;
        return bRows && aUnit;
    }

    /// <summary>
    /// Which part of a square product the causal kernel's in-chunk blocks need, so the tiles skip the rest: <see cref="LowerOutput"/>
    /// computes C on and below its diagonal (M = N; the tiles wholly above it are written as zeros, the rest of the tiles that the
    /// diagonal cuts are exact), <see cref="LowerOutputUnwritten"/> the same without the zeros (the tiles wholly above the
    /// diagonal are left as the output held them: for a reader that masks them itself, as the masked polynomial does; what
    /// writing them cost is in PERF.md), <see cref="LowerA"/> and <see cref="UpperA"/> take A as
    /// lower or upper triangular (M = K; a row's sum runs over the columns that can be nonzero, so C is the exact product when A is).
    /// </summary>
    public enum Triangle { None, LowerOutput, LowerA, UpperA, LowerOutputUnwritten }

    /// <summary>
    /// a [..., M, K] · b [..., K, N] → [..., M, N], as <c>a.matmul(b)</c>; <paramref name="triangle"/> says which part is needed. The
    /// product is a new contiguous tensor, or written into <paramref name="into"/> (its shape; any layout, for instance the
    /// tokens of a larger output) and that tensor returned: the tiles store there directly where its rows are unit-stride
    /// float32 (<see cref="Writable"/>), else the product is copied in.
    /// </summary>
    public static Tensor MatMul(Tensor a, Tensor b, Triangle triangle = Triangle.None, Tensor? into = null)
    {
        if (triangle is Triangle.LowerOutput or Triangle.LowerOutputUnwritten && a.size(-2) != b.size(-1))
            throw new ArgumentException($"a lower-triangular product needs M = N; got M = {a.size(-2)}, N = {b.size(-1)}", nameof(triangle));
        if (triangle is Triangle.LowerA or Triangle.UpperA && a.size(-2) != a.size(-1))
            throw new ArgumentException($"a triangular A needs M = K; got M = {a.size(-2)}, K = {a.size(-1)}", nameof(triangle));
        var shape = a.Shape().ToArray();
        shape[^1] = b.size(-1);
        if (into is not null && !into.Shape().SequenceEqual(shape))
            throw new ArgumentException($"the product is [{string.Join(", ", shape)}]; got into [{string.Join(", ", into.Shape())}]", nameof(into));
        if (!Supports(a, b) || (into is not null && !Writable(into)))
        {
            FallbackObserver?.Invoke(a, b);
            return ByLibtorch(a, b, into);
        }
        var c = into ?? empty(shape, dtype: ScalarType.Float32, device: a.device);
        if (c.numel() == 0) return c;
        if (a.size(-1) == 0) return c.zero_();
        float* pc = Address(c);
        using var o = new Operands(a, b);
        // A new product is contiguous: slice s at s·M·N. Only a given tensor's layout is asked for (each query is a native call).
        long ldc = into is null || c.size(-2) == 1 ? o.N : c.stride(-2);
        long[]? cOffsets = into is null ? null : SliceOffsets(c, (int)c.dim(), o.Slices);
        int rowItems = (o.M + TileRows * TilesPerItem - 1) / (TileRows * TilesPerItem);
        int panelItems = (o.Panels + PanelsPerItem - 1) / PanelsPerItem;
        o.ForItems(o.Slices * rowItems * panelItems, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (item, packed) =>
        {
            long slice = item / ((long)rowItems * panelItems);
            int rest = (int)(item % ((long)rowItems * panelItems));
            int rowStart = rest / panelItems * TileRows * TilesPerItem, panelStart = rest % panelItems * PanelsPerItem;
            int rowEnd = Math.Min(o.M, rowStart + TileRows * TilesPerItem);
            o.Block(slice, rowStart, rowEnd, panelStart, Math.Min(o.Panels, panelStart + PanelsPerItem), pc + (cOffsets is null ? slice * o.M * o.N : cOffsets[slice]) + rowStart * ldc, ldc, packed,
                triangle);
        });
        GC.KeepAlive(c);
        return c;
    }

    /// <summary>a·b by libtorch's matmul: a new tensor, or copied into <paramref name="into"/> and that returned.</summary>
    internal static Tensor ByLibtorch(Tensor a, Tensor b, Tensor? into = null)
    {
        if (into is null) return a.matmul(b);
        using var product = a.matmul(b);
        return into.copy_(product);
    }

    /// <summary>
    /// Whether the tiles store a product into <paramref name="c"/> where it lies: float32 on the CPU, rows unit-stride, rows
    /// that do not overlap (row stride at least the row length, no broadcast leading dim), no autograd graph wanted of it.
    /// </summary>
    internal static bool Writable(Tensor c) =>
        c.dtype == ScalarType.Float32 && c.device_type == DeviceType.CPU && c.dim() >= 2
        && (c.stride(-1) == 1 || c.size(-1) <= 1) && (c.size(-2) <= 1 || c.stride(-2) >= c.size(-1))
        && Enumerable.Range(0, (int)c.dim() - 2).All(d => c.size(d) <= 1 || c.stride(d) != 0)
        && !(is_grad_enabled() && c.requires_grad);

    /// <summary>
    /// Receives rows [firstRow, firstRow + rows) of slice <paramref name="slice"/> of a·b, row-major with row stride
    /// <paramref name="ld"/>; past its last row the block holds the requested padding of zeros.
    /// </summary>
    internal delegate void RowBlockConsumer(long slice, int firstRow, int rows, float* block, int ld);

    /// <summary>
    /// a·b handed to <paramref name="consumer"/> in blocks of 12 rows while they are in L1, never written out whole: for a
    /// product whose only use is a per-row reduction (the feature gradient dφ = u·Wᵀ, reduced by the chain rule to dx).
    /// Each block is followed by <paramref name="padding"/> zeros, so the consumer may read whole vectors past its end.
    /// The consumer runs on several threads at once, each with its own blocks. Requires <see cref="Supports"/>.
    /// </summary>
    internal static void MatMulRows(Tensor a, Tensor b, int padding, RowBlockConsumer consumer)
    {
        if (!Supports(a, b)) throw new ArgumentException("SimdGemm.MatMulRows takes only products that SimdGemm.Supports", nameof(a));
        if (a.size(-2) == 0 || b.size(-1) == 0 || a.Shape()[..^2].Contains(0)) return;   // no rows to hand over
        using var o = new Operands(a, b);
        int rowItems = (o.M + TileRows - 1) / TileRows;
        int blockSize = TileRows * o.N + padding;
        o.ForItems(o.Slices * rowItems, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (item, packed) =>
        {
            long slice = item / rowItems;
            int rowStart = (int)(item % rowItems) * TileRows, rows = Math.Min(TileRows, o.M - rowStart);
            float[] buffer = ArrayPool<float>.Shared.Rent(blockSize);
            try
            {
                fixed (float* block = buffer)
                {
                    o.Block(slice, rowStart, rowStart + rows, 0, o.Panels, block, o.N, packed);   // K = 0: zeros
                    new Span<float>(block + rows * o.N, blockSize - rows * o.N).Clear();
                    consumer(slice, rowStart, rows, block, o.N);
                }
            }
            finally { ArrayPool<float>.Shared.Return(buffer); }
        });
    }

    /// <summary>One work item of a product, with a scratch buffer for a packed partial panel (K × 32 floats).</summary>
    delegate void ItemBody(long item, float* packed);

    /// <summary>The operands of one product as pointers, strides and per-slice offsets; keeps the tensors alive while in use.</summary>
    sealed class Operands : IDisposable
    {
        readonly Tensor _a, _b;
        readonly float* _pa, _pb;
        readonly long[] _aOffsets, _bOffsets;
        readonly long _rs, _cs, _ldb;
        public int M { get; }
        public int K { get; }
        public int N { get; }
        public long Slices { get; }
        public int Panels => (N + PanelWidth - 1) / PanelWidth;

        public Operands(Tensor a, Tensor b)
        {
            (_a, _b) = (a, b);
            (M, K, N) = ((int)a.size(-2), (int)a.size(-1), (int)b.size(-1));
            int rank = (int)a.dim();
            Slices = 1;
            for (int d = 0; d < rank - 2; d++) Slices *= a.Shape()[d];
            (_aOffsets, _bOffsets) = (SliceOffsets(a, rank, Slices), SliceOffsets(b, rank, Slices));
            (_rs, _cs, _ldb) = (a.stride(-2), a.stride(-1), b.stride(-2));
            _pa = Address(a);
            _pb = Address(b);
        }

        /// <summary>Rows [rowStart, rowEnd) × panels [panelStart, panelEnd) of one slice's product into c (row rowStart at c, row stride ldc).</summary>
        public void Block(long slice, int rowStart, int rowEnd, int panelStart, int panelEnd, float* c, long ldc, float* packed,
            Triangle triangle = Triangle.None) =>
            SimdGemm.Block(_pa + _aOffsets[slice] + rowStart * _rs, _rs, _cs, _pb + _bOffsets[slice], _ldb, c, ldc, K, N,
                rowEnd - rowStart, panelStart, panelEnd, packed, rowStart, triangle);

        /// <summary>Runs <paramref name="body"/> for items [0, items), in contiguous ranges shared by libtorch's intra-op thread count.</summary>
        public void ForItems(long items, ItemBody body)
        {
            void Run(long first, long count)
            {
                float[] tail = ArrayPool<float>.Shared.Rent(Math.Max(1, K * PanelWidth));
                try
                {
                    fixed (float* packed = tail)
                        for (long item = first; item < first + count; item++) body(item, packed);
                }
                finally { ArrayPool<float>.Shared.Return(tail); }
            }
            int threads = TokenLoops.ThreadsFor(items, (double)Slices * M * N * K);
            if (threads <= 1) Run(0, items);
            else TokenLoops.ForRanges(items, threads, Run);
        }

        public void Dispose()
        {
            GC.KeepAlive(_a);
            GC.KeepAlive(_b);
        }
    }

    /// <summary>
    /// The address of x's first element, for any layout (x must stay alive while it is used). Read through a one-element
    /// view: <c>storage&lt;T&gt;()</c> would leave an undisposed alias of the tensor behind, keeping its memory from being
    /// reused until the dispose scope ends (every chunk's product then faulted in fresh pages).
    /// </summary>
    internal static float* Address(Tensor x)
    {
        if (x.numel() == 0) return null;
        using var first = x.as_strided(new long[] { 1 }, new long[] { 1 }, x.storage_offset());
        return (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(first.bytes));
    }

    /// <summary>Element offsets of each [M, K] (or [K, N]) slice of x over its leading dims, in row-major order.</summary>
    internal static long[] SliceOffsets(Tensor x, int rank, long slices)
    {
        var offsets = new long[slices];
        var strides = x.Strides();
        var shape = x.Shape();
        for (long s = 0; s < slices; s++)
        {
            long rest = s, offset = 0;
            for (int d = rank - 3; d >= 0; d--)
            {
                offset += rest % shape[d] * strides[d];
                rest /= shape[d];
            }
            offsets[s] = offset;
        }
        return offsets;
    }

    /// <summary>
    /// Rows [0, rows) of a × panels [panelStart, panelEnd) of C = a·b into c (row stride ldc); a at its first row, which is row
    /// <paramref name="firstRow"/> of the product (where the diagonal of a <paramref name="triangle"/> lies).
    /// </summary>
    /// <remarks>
    /// Without a zeroed stack (<see cref="SkipLocalsInitAttribute"/>): every tile the copy reads was first written whole by the tile
    /// kernel; zeroing the 1.5 KB tile on every call showed in profiles (PERF.md, "Max-norm loops in zmm registers").
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    static void Block(float* a, long rs, long cs, float* b, long ldb, float* c, long ldc, int k, int n,
        int rowCount, int panelStart, int panelEnd, float* packed, int firstRow = 0, Triangle triangle = Triangle.None)
    {
        float* tile = stackalloc float[TileRows * PanelWidth];
        for (int panel = panelStart; panel < panelEnd; panel++)
        {
            int column = panel * PanelWidth, width = Math.Min(PanelWidth, n - column);
            if (width == 1 && cs == 1)
            {
                // A last panel of one column ([v, 1], [Ĝ, −r]) as dot products along unit-stride rows of A: a padded
                // 16-column tile would do 16 multiply-adds for each useful one.
                for (int kk = 0; kk < k; kk++) packed[kk] = b[kk * ldb + column];
                for (int row = 0; row < rowCount; row++)
                {
                    var (first, end) = Terms(triangle, firstRow + row, firstRow + row + 1, k);
                    c[row * ldc + column] = triangle is Triangle.LowerOutput or Triangle.LowerOutputUnwritten && column > firstRow + row ? 0f
                        : TokenLoops.Dot<float>(new ReadOnlySpan<float>(a + row * rs + first, end - first), new ReadOnlySpan<float>(packed + first, end - first));
                }
                continue;
            }
            bool direct = width == PanelWidth, narrow = width <= PanelWidth / 2;
            float* panelB = b + column;
            long panelLd = ldb;
            if (!direct)
            {
                // The last, partial panel is copied with zero padding to 16 or 32 columns, so tile loads never leave B
                // (a width of 1, as in [v, 1], then costs half a panel, not a whole one).
                int padded = narrow ? PanelWidth / 2 : PanelWidth;
                for (int kk = 0; kk < k; kk++)
                {
                    float* source = b + kk * ldb + column, target = packed + kk * padded;
                    for (int j = 0; j < width; j++) target[j] = source[j];
                    for (int j = width; j < padded; j++) target[j] = 0f;
                }
                panelB = packed;
                panelLd = padded;
            }
            for (int row = 0; row < rowCount;)
            {
                int rows = Math.Min(TileRows, rowCount - row);
                if (triangle is Triangle.LowerOutput or Triangle.LowerOutputUnwritten && column >= firstRow + row + rows)
                {
                    // Wholly above the diagonal: not needed; zeros, so that no stale memory reaches a reader (unless it masks them).
                    if (triangle == Triangle.LowerOutput)
                        for (int r = 0; r < rows; r++) new Span<float>(c + (row + r) * ldc + column, width).Clear();
                    row += rows;
                    continue;
                }
                var (first, end) = Terms(triangle, firstRow + row, firstRow + row + rows, k);
                float* target = direct ? c + row * ldc + column : tile;
                long targetLd = direct ? ldc : PanelWidth;
                float* tileA = a + row * rs + first * cs, tileB = panelB + first * panelLd;
                if (narrow) Tile<Half>(rows, tileA, rs, cs, tileB, panelLd, end - first, target, targetLd);
                else Tile<Whole>(rows, tileA, rs, cs, tileB, panelLd, end - first, target, targetLd);
                if (!direct)
                    for (int r = 0; r < rows; r++)
                        for (int j = 0; j < width; j++)
                            c[(row + r) * ldc + column + j] = tile[r * PanelWidth + j];
                row += rows;
            }
        }
    }

    /// <summary>The terms [first, end) of the sum over k that rows [top, bottom) of a triangular A can have nonzero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static (int First, int End) Terms(Triangle triangle, int top, int bottom, int k) => triangle switch
    {
        Triangle.LowerA => (0, Math.Min(k, bottom)),
        Triangle.UpperA => (Math.Min(k, top), k),
        _ => (0, k),
    };

    /// <summary>
    /// C [m × n] = A [m × k]·B [k × n] on raw memory (A's entries at row·rs + kk·cs, B's rows unit-stride with stride ldb,
    /// C's with stride ldc), for kernels that build their operands in cache; <paramref name="packed"/> holds k × 32 floats.
    /// </summary>
    internal static void Product(float* a, long rs, long cs, float* b, long ldb, float* c, long ldc, int m, int k, int n, float* packed)
    {
        if (m == 0 || n == 0) return;
        if (k == 0) { for (int row = 0; row < m; row++) new Span<float>(c + row * ldc, n).Clear(); return; }
        Block(a, rs, cs, b, ldb, c, ldc, k, n, m, 0, (n + PanelWidth - 1) / PanelWidth, packed);
    }

    /// <summary>A panel's width as a type, so the JIT compiles each tile once per width without a branch inside.</summary>
    interface IPanel { static abstract bool TwoVectors { get; } }
    struct Whole : IPanel { public static bool TwoVectors => true; }
    struct Half : IPanel { public static bool TwoVectors => false; }

    /// <summary>A tile's row count as a type, so the JIT compiles one tile per count with only its rows' code.</summary>
    internal interface IRows { static abstract int Count { get; } }
    internal struct R1 : IRows { public static int Count => 1; }
    internal struct R2 : IRows { public static int Count => 2; }
    internal struct R3 : IRows { public static int Count => 3; }
    internal struct R4 : IRows { public static int Count => 4; }
    internal struct R5 : IRows { public static int Count => 5; }
    internal struct R6 : IRows { public static int Count => 6; }
    internal struct R7 : IRows { public static int Count => 7; }
    internal struct R8 : IRows { public static int Count => 8; }
    internal struct R9 : IRows { public static int Count => 9; }
    internal struct R10 : IRows { public static int Count => 10; }
    internal struct R11 : IRows { public static int Count => 11; }
    internal struct R12 : IRows { public static int Count => 12; }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Tile<TPanel>(int rows, float* a, long rs, long cs, float* b, long ldb, int k, float* c, long ldc)
        where TPanel : struct, IPanel
    {
        switch (rows)
        {
            case 1: Tile<R1, TPanel>(a, rs, cs, b, ldb, k, c, ldc); break;
            case 2: Tile<R2, TPanel>(a, rs, cs, b, ldb, k, c, ldc); break;
            case 3: Tile<R3, TPanel>(a, rs, cs, b, ldb, k, c, ldc); break;
            case 4: Tile<R4, TPanel>(a, rs, cs, b, ldb, k, c, ldc); break;
            case 5: Tile<R5, TPanel>(a, rs, cs, b, ldb, k, c, ldc); break;
            case 6: Tile<R6, TPanel>(a, rs, cs, b, ldb, k, c, ldc); break;
            case 7: Tile<R7, TPanel>(a, rs, cs, b, ldb, k, c, ldc); break;
            case 8: Tile<R8, TPanel>(a, rs, cs, b, ldb, k, c, ldc); break;
            case 9: Tile<R9, TPanel>(a, rs, cs, b, ldb, k, c, ldc); break;
            case 10: Tile<R10, TPanel>(a, rs, cs, b, ldb, k, c, ldc); break;
            case 11: Tile<R11, TPanel>(a, rs, cs, b, ldb, k, c, ldc); break;
            case 12: Tile<R12, TPanel>(a, rs, cs, b, ldb, k, c, ldc); break;
            default: throw new ArgumentOutOfRangeException(nameof(rows), rows, "a tile has 1 to 12 rows");
        }
    }

    /// <summary>
    /// C[rows × 32 or 16] = A[rows × k]·B[k × 32 or 16]: one zmm accumulator per row and vector of the panel, all in
    /// registers (12 × 2 = 24 at most); each step loads one row of B and broadcasts one element of A per row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile<TRows, TPanel>(float* a, long rs, long cs, float* b, long ldb, int k, float* c, long ldc)
        where TRows : struct, IRows where TPanel : struct, IPanel
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default,
            c90 = default, c91 = default, ca0 = default, ca1 = default, cb0 = default, cb1 = default;
        for (int kk = 0; kk < k; kk++, a += cs, b += ldb)
        {
            var b0 = Vector512.Load(b);
            var b1 = TPanel.TwoVectors ? Vector512.Load(b + 16) : default;
            Vector512<float> x;
            { x = Vector512.Create(a[0]); c00 = Fma(x, b0, c00); if (TPanel.TwoVectors) c01 = Fma(x, b1, c01); }
            if (TRows.Count > 1) { x = Vector512.Create(a[rs]); c10 = Fma(x, b0, c10); if (TPanel.TwoVectors) c11 = Fma(x, b1, c11); }
            if (TRows.Count > 2) { x = Vector512.Create(a[2 * rs]); c20 = Fma(x, b0, c20); if (TPanel.TwoVectors) c21 = Fma(x, b1, c21); }
            if (TRows.Count > 3) { x = Vector512.Create(a[3 * rs]); c30 = Fma(x, b0, c30); if (TPanel.TwoVectors) c31 = Fma(x, b1, c31); }
            if (TRows.Count > 4) { x = Vector512.Create(a[4 * rs]); c40 = Fma(x, b0, c40); if (TPanel.TwoVectors) c41 = Fma(x, b1, c41); }
            if (TRows.Count > 5) { x = Vector512.Create(a[5 * rs]); c50 = Fma(x, b0, c50); if (TPanel.TwoVectors) c51 = Fma(x, b1, c51); }
            if (TRows.Count > 6) { x = Vector512.Create(a[6 * rs]); c60 = Fma(x, b0, c60); if (TPanel.TwoVectors) c61 = Fma(x, b1, c61); }
            if (TRows.Count > 7) { x = Vector512.Create(a[7 * rs]); c70 = Fma(x, b0, c70); if (TPanel.TwoVectors) c71 = Fma(x, b1, c71); }
            if (TRows.Count > 8) { x = Vector512.Create(a[8 * rs]); c80 = Fma(x, b0, c80); if (TPanel.TwoVectors) c81 = Fma(x, b1, c81); }
            if (TRows.Count > 9) { x = Vector512.Create(a[9 * rs]); c90 = Fma(x, b0, c90); if (TPanel.TwoVectors) c91 = Fma(x, b1, c91); }
            if (TRows.Count > 10) { x = Vector512.Create(a[10 * rs]); ca0 = Fma(x, b0, ca0); if (TPanel.TwoVectors) ca1 = Fma(x, b1, ca1); }
            if (TRows.Count > 11) { x = Vector512.Create(a[11 * rs]); cb0 = Fma(x, b0, cb0); if (TPanel.TwoVectors) cb1 = Fma(x, b1, cb1); }
        }
        Store<TPanel>(c + 0 * ldc, c00, c01);
        if (TRows.Count > 1) Store<TPanel>(c + 1 * ldc, c10, c11);
        if (TRows.Count > 2) Store<TPanel>(c + 2 * ldc, c20, c21);
        if (TRows.Count > 3) Store<TPanel>(c + 3 * ldc, c30, c31);
        if (TRows.Count > 4) Store<TPanel>(c + 4 * ldc, c40, c41);
        if (TRows.Count > 5) Store<TPanel>(c + 5 * ldc, c50, c51);
        if (TRows.Count > 6) Store<TPanel>(c + 6 * ldc, c60, c61);
        if (TRows.Count > 7) Store<TPanel>(c + 7 * ldc, c70, c71);
        if (TRows.Count > 8) Store<TPanel>(c + 8 * ldc, c80, c81);
        if (TRows.Count > 9) Store<TPanel>(c + 9 * ldc, c90, c91);
        if (TRows.Count > 10) Store<TPanel>(c + 10 * ldc, ca0, ca1);
        if (TRows.Count > 11) Store<TPanel>(c + 11 * ldc, cb0, cb1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Fma(Vector512<float> x, Vector512<float> b, Vector512<float> acc) => Vector512.FusedMultiplyAdd(x, b, acc);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store<TPanel>(float* c, Vector512<float> first, Vector512<float> second) where TPanel : struct, IPanel
    {
        first.Store(c);
        if (TPanel.TwoVectors) second.Store(c + 16);
    }
}
