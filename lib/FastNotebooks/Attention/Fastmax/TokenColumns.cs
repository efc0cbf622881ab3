using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using static TorchSharp.torch;
using static FastNotebooks.Attention.Fastmax.SimdGemm;

namespace FastNotebooks.Attention.Fastmax;

/// <summary>
/// The two products of packed order-2 features with a weighted state W [..., F, C] (feature f = i·Rows + d holds
/// x̃_i·x̃_j, j = (i + d) mod D̃) in float32 with AVX-512, with the tokens across the vector lanes: 32 tokens at a time,
/// their x̃ transposed to [D̃, 32], so a feature of all 32 is x̃_i ⊙ x̃_j, two whole aligned vectors. Neither product
/// stores the features or their gradient (n × F): <see cref="Project"/> builds each feature as the register tile needs it,
/// <see cref="Gradient"/> hands each tile of dφ to the chain rule. The token-major forms in <see cref="PackedTaylorFeatures"/>
/// (features built as rows, then <see cref="SimdGemm"/>) are their reference.
/// </summary>
internal static unsafe class TokenColumns
{
    // Every loop here is compiled fully optimized on first use (AggressiveOptimization): under tiered compilation, as in the
    // notebooks, the strip loops otherwise ran unoptimized code for their first calls (notebook 03, p = 2 at D = 8, N = 4096,
    // median of 9 calls: 2.24–2.32 ms without it, 0.96–0.98 ms with it; the same holds for FeatureStates).
    const int Strip = 32;   // tokens per strip: two zmm of float32

    /// <summary>
    /// φ(x̃)·W [..., n, C] for an extended x [..., n, 2D̃] and a weighted state W [..., F, C] with unit-stride rows or
    /// columns (column-narrowed and transposed views are read as they are): per strip, register tiles of up to 12 columns of W × 32 tokens over all F features,
    /// each feature built from x̃ in registers as the tile reaches it (two multiplies per 24 multiply-adds).
    /// </summary>
    public static Tensor Project(Tensor extended, Tensor weightedState, int d, int rows)
    {
        int tilde = d + 1, size = tilde * rows, columns = (int)weightedState.shape[^1], n = (int)extended.shape[^2];
        using var x = extended.contiguous();
        using var w = StateLayout(weightedState, out long rowStride, out long columnStride);
        var shape = extended.shape.ToArray();
        shape[^1] = columns;
        var output = empty(shape, dtype: ScalarType.Float32, device: extended.device);
        long slices = SliceCount(extended);
        if (slices == 0 || n == 0 || columns == 0) return output;
        var offsets = SliceOffsets(w, (int)w.dim(), slices);
        int blocks = (columns + 11) / 12, perBlock = (columns + blocks - 1) / blocks;
        float* xs = Address(x), ws = Address(w), outs = Address(output);
        ForStrips(slices, n, (long)size * columns, (tilde + columns) * Strip, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (slice, start, tokens, scratch) =>
        {
            float* xT = scratch, outT = scratch + tilde * Strip;
            long token0 = slice * n + start;
            ToColumns(xs + token0 * 2 * tilde, 2 * tilde, tokens, tilde, xT);
            for (int c0 = 0; c0 < columns; c0 += perBlock)
                ProjectTile(Math.Min(perBlock, columns - c0), ws + offsets[slice] + c0 * columnStride, rowStride, columnStride, xT, outT + c0 * Strip, tilde, rows);
            FromColumns(outT, tokens, columns, outs + token0 * columns, columns);
        });
        GC.KeepAlive(w);
        return output;
    }

    /// <summary>
    /// ∂/∂x of Σ_c u_c Σ_f φ_f(x̃)·W_fc: dx [..., n, D] for u [..., n, C], a weighted state W [..., F, C] with unit-stride rows
    /// or columns and an extended x [..., n, 2D̃] (<see cref="PackedTaylorFeatures.Gradient"/>). Per strip, dφᵀ = W·uᵀ comes in
    /// register tiles of up to 12 features (i, d) of one i × 32 tokens, and each tile goes straight into the chain rule
    /// (<see cref="ChainRule"/>). The token-major form before it (dφ rows of 12 tokens against shifted windows of x̃) read
    /// unaligned vectors and padded each sum to whole vectors: at n = 832, D = 32, C = 33, one thread, 0.37 ms against
    /// 0.21 ms here, of which the tiles take 0.15 and the chain rule 0.035.
    /// </summary>
    public static Tensor Gradient(Tensor u, Tensor weightedState, Tensor extended, int d, int rows)
    {
        int tilde = d + 1, c = (int)u.shape[^1], n = (int)u.shape[^2];
        using var uc = u.contiguous();
        using var w = StateLayout(weightedState, out long rowStride, out long columnStride);
        using var x = extended.contiguous();
        var shape = extended.shape.ToArray();
        shape[^1] = d;
        var dx = empty(shape, dtype: ScalarType.Float32, device: extended.device);
        long slices = SliceCount(extended);
        if (slices == 0 || n == 0) return dx;
        var offsets = SliceOffsets(w, (int)w.dim(), slices);
        int tiles = (rows + 11) / 12, perTile = (rows + tiles - 1) / tiles;   // a feature row's Rows features in even tiles: 17 as 9 + 8
        float* us = Address(uc), ws = Address(w), xs = Address(x), dxs = Address(dx);
        ForStrips(slices, n, (long)tilde * rows * c, (c + 2 * tilde + 12) * Strip, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (slice, start, tokens, scratch) =>
        {
            float* uT = scratch, xT = uT + c * Strip, dxT = xT + tilde * Strip, tile = dxT + tilde * Strip;
            long token0 = slice * n + start;
            ToColumns(us + token0 * c, c, tokens, c, uT);
            ToColumns(xs + token0 * 2 * tilde, 2 * tilde, tokens, tilde, xT);
            new Span<float>(dxT, tilde * Strip).Clear();
            float* state = ws + offsets[slice];
            for (int i = 0; i < tilde; i++)
                for (int shift = 0; shift < rows; shift += perTile)
                {
                    int count = Math.Min(perTile, rows - shift);
                    TileProduct(count, state + (i * rows + shift) * rowStride, rowStride, columnStride, uT, Strip, c, tile, Strip);
                    ChainRule(tile, count, xT, dxT, i, (i + shift) % tilde, tilde);
                }
            FromColumns(dxT, tokens, d, dxs + token0 * d, d);
        });
        GC.KeepAlive(w);
        return dx;
    }

    /// <summary>
    /// The chain rule for one tile of features (i, d), d = shift … shift + count − 1, and 32 tokens: dx̃_j += dφ·x̃_i for each
    /// j = (i + d) mod D̃, and dx̃_i += Σ_d dφ·x̃_j summed in registers first (the diagonal d = 0, j = i, gets both terms).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    static void ChainRule(float* tile, int count, float* xT, float* dxT, int i, int j, int tilde)
    {
        var (xi0, xi1) = (Vector512.Load(xT + i * Strip), Vector512.Load(xT + i * Strip + 16));
        Vector512<float> sum0 = default, sum1 = default;
        for (int r = 0; r < count; r++, j = j + 1 == tilde ? 0 : j + 1)
        {
            var (g0, g1) = (Vector512.Load(tile + r * Strip), Vector512.Load(tile + r * Strip + 16));
            float* xj = xT + j * Strip, dxj = dxT + j * Strip;
            sum0 = Vector512.FusedMultiplyAdd(g0, Vector512.Load(xj), sum0);
            sum1 = Vector512.FusedMultiplyAdd(g1, Vector512.Load(xj + 16), sum1);
            Vector512.FusedMultiplyAdd(g0, xi0, Vector512.Load(dxj)).Store(dxj);
            Vector512.FusedMultiplyAdd(g1, xi1, Vector512.Load(dxj + 16)).Store(dxj + 16);
        }
        float* dxi = dxT + i * Strip;
        (Vector512.Load(dxi) + sum0).Store(dxi);
        (Vector512.Load(dxi + 16) + sum1).Store(dxi + 16);
    }

    static void ProjectTile(int count, float* w, long ldw, long cs, float* xT, float* outT, int tilde, int rows)
    {
        switch (count)
        {
            case 1: ProjectTile<R1>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 2: ProjectTile<R2>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 3: ProjectTile<R3>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 4: ProjectTile<R4>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 5: ProjectTile<R5>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 6: ProjectTile<R6>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 7: ProjectTile<R7>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 8: ProjectTile<R8>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 9: ProjectTile<R9>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 10: ProjectTile<R10>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 11: ProjectTile<R11>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 12: ProjectTile<R12>(w, ldw, cs, xT, outT, tilde, rows); break;
            default: throw new ArgumentOutOfRangeException(nameof(count), count, "a tile has 1 to 12 columns");
        }
    }

    /// <summary>
    /// outT[r, 0..32) = Σ_f W[f, r]·φ_f for the tile's columns r of W (at w, row stride ldw) and the strip's features
    /// φ_(i,d) = x̃_i ⊙ x̃_(i+d), built in two registers per feature; 24 accumulators. W[f, c0 + r] is at w + f·ldw + r·cs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ProjectTile<TRows>(float* w, long ldw, long cs, float* xT, float* outT, int tilde, int rows) where TRows : struct, IRows
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default,
            c90 = default, c91 = default, ca0 = default, ca1 = default, cb0 = default, cb1 = default;
        float* a = w;
        for (int i = 0; i < tilde; i++)
        {
            var (xi0, xi1) = (Vector512.Load(xT + i * Strip), Vector512.Load(xT + i * Strip + 16));
            for (int shift = 0, j = i; shift < rows; shift++, a += ldw, j = j + 1 == tilde ? 0 : j + 1)
            {
                var b0 = xi0 * Vector512.Load(xT + j * Strip);
                var b1 = xi1 * Vector512.Load(xT + j * Strip + 16);
                Vector512<float> s;
                { s = Vector512.Create(a[0]); c00 = SimdGemm.Fma(s, b0, c00); c01 = SimdGemm.Fma(s, b1, c01); }
                if (TRows.Count > 1) { s = Vector512.Create(a[1 * cs]); c10 = SimdGemm.Fma(s, b0, c10); c11 = SimdGemm.Fma(s, b1, c11); }
                if (TRows.Count > 2) { s = Vector512.Create(a[2 * cs]); c20 = SimdGemm.Fma(s, b0, c20); c21 = SimdGemm.Fma(s, b1, c21); }
                if (TRows.Count > 3) { s = Vector512.Create(a[3 * cs]); c30 = SimdGemm.Fma(s, b0, c30); c31 = SimdGemm.Fma(s, b1, c31); }
                if (TRows.Count > 4) { s = Vector512.Create(a[4 * cs]); c40 = SimdGemm.Fma(s, b0, c40); c41 = SimdGemm.Fma(s, b1, c41); }
                if (TRows.Count > 5) { s = Vector512.Create(a[5 * cs]); c50 = SimdGemm.Fma(s, b0, c50); c51 = SimdGemm.Fma(s, b1, c51); }
                if (TRows.Count > 6) { s = Vector512.Create(a[6 * cs]); c60 = SimdGemm.Fma(s, b0, c60); c61 = SimdGemm.Fma(s, b1, c61); }
                if (TRows.Count > 7) { s = Vector512.Create(a[7 * cs]); c70 = SimdGemm.Fma(s, b0, c70); c71 = SimdGemm.Fma(s, b1, c71); }
                if (TRows.Count > 8) { s = Vector512.Create(a[8 * cs]); c80 = SimdGemm.Fma(s, b0, c80); c81 = SimdGemm.Fma(s, b1, c81); }
                if (TRows.Count > 9) { s = Vector512.Create(a[9 * cs]); c90 = SimdGemm.Fma(s, b0, c90); c91 = SimdGemm.Fma(s, b1, c91); }
                if (TRows.Count > 10) { s = Vector512.Create(a[10 * cs]); ca0 = SimdGemm.Fma(s, b0, ca0); ca1 = SimdGemm.Fma(s, b1, ca1); }
                if (TRows.Count > 11) { s = Vector512.Create(a[11 * cs]); cb0 = SimdGemm.Fma(s, b0, cb0); cb1 = SimdGemm.Fma(s, b1, cb1); }
            }
        }
        Store(outT, c00, c01);
        if (TRows.Count > 1) Store(outT + 1 * Strip, c10, c11);
        if (TRows.Count > 2) Store(outT + 2 * Strip, c20, c21);
        if (TRows.Count > 3) Store(outT + 3 * Strip, c30, c31);
        if (TRows.Count > 4) Store(outT + 4 * Strip, c40, c41);
        if (TRows.Count > 5) Store(outT + 5 * Strip, c50, c51);
        if (TRows.Count > 6) Store(outT + 6 * Strip, c60, c61);
        if (TRows.Count > 7) Store(outT + 7 * Strip, c70, c71);
        if (TRows.Count > 8) Store(outT + 8 * Strip, c80, c81);
        if (TRows.Count > 9) Store(outT + 9 * Strip, c90, c91);
        if (TRows.Count > 10) Store(outT + 10 * Strip, ca0, ca1);
        if (TRows.Count > 11) Store(outT + 11 * Strip, cb0, cb1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(float* target, Vector512<float> first, Vector512<float> second)
    {
        first.Store(target);
        second.Store(target + 16);
    }

    /// <summary>
    /// The state as the kernels read it: W [..., F, C] with unit-stride rows or unit-stride columns (as
    /// <see cref="PackedTaylorFeatures.RunningStates"/> returns it) as it is, any other layout copied; W[f, c] at f·rowStride + c·columnStride.
    /// </summary>
    static Tensor StateLayout(Tensor state, out long rowStride, out long columnStride)
    {
        var w = state.stride(-1) == 1 || state.stride(-2) == 1 ? state.alias() : state.contiguous();
        (rowStride, columnStride) = (w.stride(-2), w.stride(-1));
        return w;
    }

    /// <summary>The first <paramref name="width"/> entries of <paramref name="tokens"/> rows (stride ld) as columns of a [width, 32] block, zeros past the last token.</summary>
    static void ToColumns(float* rows, int ld, int tokens, int width, float* columns) =>
        RegisterTranspose.ToColumns(rows, ld, tokens, width, columns, Strip);

    /// <summary>Columns [0, tokens) of a [width, 32] block back to rows (stride ld).</summary>
    static void FromColumns(float* columns, int tokens, int width, float* rows, int ld) =>
        RegisterTranspose.FromColumns(columns, Strip, tokens, width, rows, ld);

    /// <summary>Slices of x [..., n, ·] over its leading dims.</summary>
    internal static long SliceCount(Tensor x)
    {
        long slices = 1;
        for (int dim = 0; dim < x.dim() - 2; dim++) slices *= x.shape[dim];
        return slices;
    }

    delegate void StripBody(long slice, int start, int tokens, float* scratch);

    /// <summary>
    /// Every strip of 32 tokens of every slice, split over threads by <see cref="TokenLoops.ThreadsFor"/> at
    /// <paramref name="workPerToken"/> multiply-adds a token; each thread has its own 64-byte-aligned scratch of
    /// <paramref name="scratchFloats"/> floats.
    /// </summary>
    static void ForStrips(long slices, int n, long workPerToken, int scratchFloats, StripBody body)
    {
        int strips = (n + Strip - 1) / Strip;
        TokenLoops.ForTokenRanges(slices * strips, workPerToken * Strip, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, count) =>
        {
            float[] buffer = ArrayPool<float>.Shared.Rent(scratchFloats + 16);
            try
            {
                fixed (float* pinned = buffer)
                {
                    float* scratch = (float*)(((nint)pinned + 63) & ~(nint)63);
                    for (long item = first; item < first + count; item++)
                    {
                        int start = (int)(item % strips) * Strip;
                        body(item / strips, start, Math.Min(Strip, n - start), scratch);
                    }
                }
            }
            finally { ArrayPool<float>.Shared.Return(buffer); }
        });
    }
}
