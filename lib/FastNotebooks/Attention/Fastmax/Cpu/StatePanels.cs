using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using static FastNotebooks.Attention.Fastmax.Cpu.SimdGemm;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// uᵀ·φ(x̃) for D̃ ≥ 32 without a feature buffer: taken shift by shift, the features of one token are products of two
/// windows of its [x̃, x̃] row, φ_(i,d) = x̃_i·x̃_(i+d) for i = i0 … i0 + 31 being x̃[i0, i0 + 32) ⊙ x̃[i0 + d, i0 + d + 32). So a
/// register tile of up to 12 columns of u × 32 such features builds its operand with two loads and a multiply per vector and
/// sums over a block of 64 tokens whose x̃ and u rows stay in L1. The tiles add into a d-major copy of the state (f′ = d·D̃ + i,
/// 32 consecutive features per tile row), reordered to the packed order once per slice; the features past the last whole
/// window of 32 (i ≥ 32·⌊D̃/32⌋, one per shift at D = 32 and 64) go through the same tiles with x̃_i broadcast and 32 shifts
/// across the lanes (<see cref="FixedFirst"/>). Building 64 tokens' feature rows first
/// (<see cref="FeatureStates"/>'s other path) spent a third of the time outside the product (writing the rows, two vectors
/// for each run of Rows = 17 features at D = 32, and adding each block's product to the sum).
/// </summary>
internal static unsafe class StatePanels
{
    const int Window = 32;   // features per tile row: two zmm
    const int Block = 64;    // tokens per pass over the tiles

    /// <summary>Whether the windows cover most features: D̃ ≥ 32 (then at most 31 of every D̃ features per shift are left over).</summary>
    public static bool Supports(int d) => d + 1 >= Window && Vector512.IsHardwareAccelerated;

    /// <summary>
    /// Slices [first, first + count) of uᵀ·φ(x̃) into <paramref name="target"/> ([slices, C, F], packed order) for extended
    /// rows xs [slices, n, 2D̃] (or, when <paramref name="raw"/>, x [slices, n, D], whose [x̃, x̃] rows each block of tokens
    /// builds in cache, of x − mean(x) per token when <paramref name="centre"/>) and us [slices, n, C] (or, when
    /// <paramref name="appendOne"/>, [slices, n, C − 1] standing for [u, 1]).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Slices(float* xs, float* us, float* target, long first, long count, int n, int c, int d, int rows, bool raw = false, bool appendOne = false,
        bool centre = false)
    {
        if (centre && !raw) throw new ArgumentException("only raw inputs are centred in cache", nameof(centre));
        var layout = new Layout(n, c, d, rows, raw, appendOne);
        float[] buffer = ArrayPool<float>.Shared.Rent(layout.BufferLength);
        try
        {
            fixed (float* scratch = buffer)
                for (long slice = first; slice < first + count; slice++)
                {
                    layout.Sums(xs + slice * n * layout.Ldx, us + slice * n * layout.Ldu, scratch, centre);
                    // Into the packed order f = i·Rows + d (see Layout.ToPacked).
                    float* sum = target + slice * c * layout.Size;
                    for (int column = 0; column < c; column++) layout.ToPacked(scratch, column, sum + column * layout.Size, add: false);
                }
        }
        finally { ArrayPool<float>.Shared.Return(buffer); }
    }

    /// <summary>
    /// The weighted running states of consecutive chunks, with the chunk states never written: for slices (heads)
    /// [first, first + count) of <paramref name="chunks"/> chunks of n tokens each (xs, us as in <see cref="Slices"/>, one slice
    /// of those per chunk), chunk by chunk in order (from the last when <paramref name="reverse"/>) states[chunk] = w ⊙ running,
    /// then running += the chunk's uᵀ·φ(x̃), transposed into the packed order and added in cache. running: the carry [heads, C, F],
    /// moved past the chunks; states: [C, F] a chunk, head h's chunk g at <paramref name="stateOffsets"/>[h·chunks + g].
    /// The same float32 operations in the same order as <see cref="Slices"/> followed by <see cref="PackedFeatureLoops.RunningStates"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunningSlices(float* xs, float* us, float* running, float* weights, float* states, long[] stateOffsets, long first, long count, long chunks,
        int n, int c, int d, int rows, bool raw, bool appendOne, bool reverse)
    {
        var layout = new Layout(n, c, d, rows, raw, appendOne);
        int size = layout.Size;
        float[] buffer = ArrayPool<float>.Shared.Rent(layout.BufferLength);
        try
        {
            fixed (float* scratch = buffer)
                for (long head = first; head < first + count; head++)
                {
                    float* carry = running + head * c * size;
                    for (long step = 0; step < chunks; step++)
                    {
                        long slice = head * chunks + (reverse ? chunks - 1 - step : step);
                        layout.Sums(xs + slice * n * layout.Ldx, us + slice * n * layout.Ldu, scratch, centre: false);
                        float* state = states + stateOffsets[slice];
                        for (int column = 0; column < c; column++)
                        {
                            float* row = carry + column * size;
                            TokenLoops.Multiply<float>(new ReadOnlySpan<float>(row, size), new ReadOnlySpan<float>(weights, size), new Span<float>(state + column * size, size));
                            layout.ToPacked(scratch, column, row, add: true);
                        }
                    }
                }
        }
        finally { ArrayPool<float>.Shared.Return(buffer); }
    }

    /// <summary>
    /// One call's sizes and its scratch: the d-major sums [C, Rows, D̃], the leftover features [C, rest, lanes] and, where built in
    /// cache, a block of [x̃, x̃] rows and of [u, 1] rows.
    /// </summary>
    readonly struct Layout
    {
        public readonly int N, C, D, Rows, Tilde, Size, Covered, Ldx, Ldu, Lanes, LeftoverSize, PerBlock;
        public readonly bool Raw, AppendOne;

        public Layout(int n, int c, int d, int rows, bool raw, bool appendOne)
        {
            (N, C, D, Rows, Raw, AppendOne) = (n, c, d, rows, raw, appendOne);
            Tilde = d + 1;
            Size = Tilde * rows;
            Covered = Tilde / Window * Window;
            int blocks = (c + 11) / 12;
            PerBlock = (c + blocks - 1) / blocks;
            Lanes = (rows + Window - 1) / Window * Window;
            LeftoverSize = (Tilde - Covered) * Lanes;
            Ldx = raw ? d : 2 * Tilde;
            Ldu = appendOne ? c - 1 : c;
        }

        public int BufferLength => C * (Size + LeftoverSize) + (Raw ? Block * 2 * Tilde : 0) + (AppendOne ? Block * C : 0);

        /// <summary>One slice's uᵀ·φ(x̃) into the scratch's d-major sums and leftovers, written by the first block of tokens, added to by the others.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Sums(float* x, float* u, float* scratch, bool centre)
        {
            float* dMajor = scratch, leftover = scratch + C * Size;
            float* extendedBlock = leftover + C * LeftoverSize;
            float* uBlock = extendedBlock + (Raw ? Block * 2 * Tilde : 0);
            for (int start = 0; start < N; start += Block)
            {
                int tokens = Math.Min(Block, N - start);
                bool firstBlock = start == 0;   // its tiles write the sums, later blocks' add to them: no clearing
                float* xb = x + (long)start * Ldx, ub = u + (long)start * Ldu;
                if (Raw) xb = Extend(xb, tokens, D, extendedBlock, centre);
                if (AppendOne) ub = WithOne(ub, tokens, C - 1, uBlock);
                for (int shift = 0; shift < Rows; shift++)
                    for (int i0 = 0; i0 < Covered; i0 += Window)
                        for (int c0 = 0; c0 < C; c0 += PerBlock)
                            Tile<ShiftedWindow>(Math.Min(PerBlock, C - c0), xb + i0, 2 * Tilde, shift, ub + c0, C, tokens,
                                dMajor + (long)c0 * Size + shift * Tilde + i0, Size, firstBlock);
                for (int i = Covered; i < Tilde; i++)
                    for (int d0 = 0; d0 < Rows; d0 += Window)
                        for (int c0 = 0; c0 < C; c0 += PerBlock)
                            Tile<FixedFirst>(Math.Min(PerBlock, C - c0), xb + i, 2 * Tilde, d0, ub + c0, C, tokens,
                                leftover + (long)c0 * LeftoverSize + (i - Covered) * Lanes + d0, LeftoverSize, firstBlock);
            }
        }

        /// <summary>
        /// Column <paramref name="column"/> of u's sums into the packed order f = i·Rows + d at <paramref name="packed"/> (written, or added
        /// to): the windows' [Rows, covered] block transposed (16 × 16 register blocks, faster than element by element: PERF.md), then the leftover rows, already in d order.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void ToPacked(float* scratch, int column, float* packed, bool add)
        {
            float* leftover = scratch + C * Size + column * LeftoverSize;
            RegisterTranspose.FromColumns(scratch + column * Size, Tilde, Covered, Rows, packed, Rows, add);
            for (int i = Covered; i < Tilde; i++)
            {
                var source = new ReadOnlySpan<float>(leftover + (i - Covered) * Lanes, Rows);
                var target = new Span<float>(packed + i * Rows, Rows);
                if (add) TokenLoops.Accumulate<float>(source, target);
                else source.CopyTo(target);
            }
        }
    }

    /// <summary>
    /// [x̃, x̃] = [x, 1, x, 1] rows of <paramref name="tokens"/> consecutive raw tokens x (D each) into <paramref name="block"/>, x − mean(x)
    /// in place of x when <paramref name="centre"/>; returns the block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float* Extend(float* x, int tokens, int d, float* block, bool centre)
    {
        int tilde = d + 1;
        for (int t = 0; t < tokens; t++, x += d)
        {
            float* row = block + t * 2 * tilde;
            var source = new ReadOnlySpan<float>(x, d);
            if (centre) CentredCopy(x, d, row);
            else source.CopyTo(new Span<float>(row, d));
            new ReadOnlySpan<float>(row, d).CopyTo(new Span<float>(row + tilde, d));
            row[d] = 1;
            row[tilde + d] = 1;
        }
        return block;
    }

    /// <summary>
    /// x − mean(x) of one token (D ≥ 16 floats) into <paramref name="row"/>, in zmm registers: the generic span helpers ran
    /// markedly slower here where the bench compiles without tiering (PERF.md, "Max-norm folded into the unmasked kernel").
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void CentredCopy(float* x, int d, float* row)
    {
        int i = 0;
        var sum = Vector512<float>.Zero;
        for (; i + 16 <= d; i += 16) sum += Vector512.Load(x + i);
        float total = Vector512.Sum(sum);
        for (int j = i; j < d; j++) total += x[j];
        float mean = total / d;
        var shift = Vector512.Create(mean);
        for (i = 0; i + 16 <= d; i += 16) (Vector512.Load(x + i) - shift).Store(row + i);
        for (; i < d; i++) row[i] = x[i] - mean;
    }

    /// <summary>[u, 1] rows (C = width + 1) of <paramref name="tokens"/> consecutive rows u (width each) into <paramref name="block"/>; returns it.</summary>
    static float* WithOne(float* u, int tokens, int width, float* block)
    {
        for (int t = 0; t < tokens; t++, u += width)
        {
            float* row = block + t * (width + 1);
            new ReadOnlySpan<float>(u, width).CopyTo(new Span<float>(row, width));
            row[width] = 1;
        }
        return block;
    }

    static void Tile<TWindow>(int count, float* x, int ldx, int shift, float* u, int ldu, int tokens, float* sum, long ldSum, bool write)
        where TWindow : struct, IWindow
    {
        switch (count)
        {
            case 1: Tile<R1, TWindow>(x, ldx, shift, u, ldu, tokens, sum, ldSum, write); break;
            case 2: Tile<R2, TWindow>(x, ldx, shift, u, ldu, tokens, sum, ldSum, write); break;
            case 3: Tile<R3, TWindow>(x, ldx, shift, u, ldu, tokens, sum, ldSum, write); break;
            case 4: Tile<R4, TWindow>(x, ldx, shift, u, ldu, tokens, sum, ldSum, write); break;
            case 5: Tile<R5, TWindow>(x, ldx, shift, u, ldu, tokens, sum, ldSum, write); break;
            case 6: Tile<R6, TWindow>(x, ldx, shift, u, ldu, tokens, sum, ldSum, write); break;
            case 7: Tile<R7, TWindow>(x, ldx, shift, u, ldu, tokens, sum, ldSum, write); break;
            case 8: Tile<R8, TWindow>(x, ldx, shift, u, ldu, tokens, sum, ldSum, write); break;
            case 9: Tile<R9, TWindow>(x, ldx, shift, u, ldu, tokens, sum, ldSum, write); break;
            case 10: Tile<R10, TWindow>(x, ldx, shift, u, ldu, tokens, sum, ldSum, write); break;
            case 11: Tile<R11, TWindow>(x, ldx, shift, u, ldu, tokens, sum, ldSum, write); break;
            case 12: Tile<R12, TWindow>(x, ldx, shift, u, ldu, tokens, sum, ldSum, write); break;
            default: throw new ArgumentOutOfRangeException(nameof(count), count, "a tile has 1 to 12 columns of u");
        }
    }

    /// <summary>
    /// sum[r, 0..32) += Σ_t u_t[r]·(x̃_t[0..32) ⊙ x̃_t[shift..shift + 32)) for the tile's columns r of u (x at the window's
    /// first entry, rows ldx apart); 24 accumulators, loaded from and stored back to the d-major sum.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile<TRows, TWindow>(float* x, int ldx, int shift, float* u, int ldu, int tokens, float* sum, long ldSum, bool write)
        where TRows : struct, IRows where TWindow : struct, IWindow
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default,
            c90 = default, c91 = default, ca0 = default, ca1 = default, cb0 = default, cb1 = default;
        for (int t = 0; t < tokens; t++, x += ldx, u += ldu)
        {
            var (b0, b1) = TWindow.Features(x, shift);
            Vector512<float> s;
            { s = Vector512.Create(u[0]); c00 = SimdGemm.Fma(s, b0, c00); c01 = SimdGemm.Fma(s, b1, c01); }
            if (TRows.Count > 1) { s = Vector512.Create(u[1]); c10 = SimdGemm.Fma(s, b0, c10); c11 = SimdGemm.Fma(s, b1, c11); }
            if (TRows.Count > 2) { s = Vector512.Create(u[2]); c20 = SimdGemm.Fma(s, b0, c20); c21 = SimdGemm.Fma(s, b1, c21); }
            if (TRows.Count > 3) { s = Vector512.Create(u[3]); c30 = SimdGemm.Fma(s, b0, c30); c31 = SimdGemm.Fma(s, b1, c31); }
            if (TRows.Count > 4) { s = Vector512.Create(u[4]); c40 = SimdGemm.Fma(s, b0, c40); c41 = SimdGemm.Fma(s, b1, c41); }
            if (TRows.Count > 5) { s = Vector512.Create(u[5]); c50 = SimdGemm.Fma(s, b0, c50); c51 = SimdGemm.Fma(s, b1, c51); }
            if (TRows.Count > 6) { s = Vector512.Create(u[6]); c60 = SimdGemm.Fma(s, b0, c60); c61 = SimdGemm.Fma(s, b1, c61); }
            if (TRows.Count > 7) { s = Vector512.Create(u[7]); c70 = SimdGemm.Fma(s, b0, c70); c71 = SimdGemm.Fma(s, b1, c71); }
            if (TRows.Count > 8) { s = Vector512.Create(u[8]); c80 = SimdGemm.Fma(s, b0, c80); c81 = SimdGemm.Fma(s, b1, c81); }
            if (TRows.Count > 9) { s = Vector512.Create(u[9]); c90 = SimdGemm.Fma(s, b0, c90); c91 = SimdGemm.Fma(s, b1, c91); }
            if (TRows.Count > 10) { s = Vector512.Create(u[10]); ca0 = SimdGemm.Fma(s, b0, ca0); ca1 = SimdGemm.Fma(s, b1, ca1); }
            if (TRows.Count > 11) { s = Vector512.Create(u[11]); cb0 = SimdGemm.Fma(s, b0, cb0); cb1 = SimdGemm.Fma(s, b1, cb1); }
        }
        AddTo(sum, c00, c01, write);
        if (TRows.Count > 1) AddTo(sum + 1 * ldSum, c10, c11, write);
        if (TRows.Count > 2) AddTo(sum + 2 * ldSum, c20, c21, write);
        if (TRows.Count > 3) AddTo(sum + 3 * ldSum, c30, c31, write);
        if (TRows.Count > 4) AddTo(sum + 4 * ldSum, c40, c41, write);
        if (TRows.Count > 5) AddTo(sum + 5 * ldSum, c50, c51, write);
        if (TRows.Count > 6) AddTo(sum + 6 * ldSum, c60, c61, write);
        if (TRows.Count > 7) AddTo(sum + 7 * ldSum, c70, c71, write);
        if (TRows.Count > 8) AddTo(sum + 8 * ldSum, c80, c81, write);
        if (TRows.Count > 9) AddTo(sum + 9 * ldSum, c90, c91, write);
        if (TRows.Count > 10) AddTo(sum + 10 * ldSum, ca0, ca1, write);
        if (TRows.Count > 11) AddTo(sum + 11 * ldSum, cb0, cb1, write);
    }

    /// <summary>
    /// A block's sums are written (the first block) or added to the running ones at its end: sums of 64 terms, then of the
    /// blocks (fewer rounding steps in a row than one running sum).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void AddTo(float* target, Vector512<float> first, Vector512<float> second, bool write)
    {
        if (write)
        {
            first.Store(target);
            second.Store(target + 16);
            return;
        }
        (Vector512.Load(target) + first).Store(target);
        (Vector512.Load(target + 16) + second).Store(target + 16);
    }

    /// <summary>How a tile forms its 32 features of one token from the token's [x̃, x̃] row.</summary>
    interface IWindow { static abstract (Vector512<float>, Vector512<float>) Features(float* x, int shift); }

    /// <summary>x̃_i·x̃_(i+shift) for i = 0 … 31 from x (one shift, 32 consecutive i).</summary>
    struct ShiftedWindow : IWindow
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (Vector512<float>, Vector512<float>) Features(float* x, int shift) =>
            (Vector512.Load(x) * Vector512.Load(x + shift), Vector512.Load(x + 16) * Vector512.Load(x + shift + 16));
    }

    /// <summary>x̃_0·x̃_(d) for d = shift … shift + 31 from x (one i, 32 consecutive shifts).</summary>
    struct FixedFirst : IWindow
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (Vector512<float>, Vector512<float>) Features(float* x, int shift)
        {
            var first = Vector512.Create(x[0]);
            return (first * Vector512.Load(x + shift), first * Vector512.Load(x + shift + 16));
        }
    }
}
