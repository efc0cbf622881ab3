using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;
using static FastNotebooks.Attention.Fastmax.Cpu.SimdGemm;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// The two products of packed order-2 features with a weighted state W [..., F, C] (feature f = i·Rows + d holds
/// x̃_i·x̃_j, j = (i + d) mod D̃) in float32 with AVX-512, with the tokens across the vector lanes: 32 tokens at a time,
/// their x̃ transposed to [D̃, 32], so a feature of all 32 is x̃_i ⊙ x̃_j, two whole aligned vectors. Neither product
/// stores the features or their gradient (n × F): <see cref="Project"/> builds each feature as the register tile needs it,
/// <see cref="Gradient"/> hands each tile of dφ to the chain rule. The token-major forms in <see cref="PackedTaylorFeatures"/>
/// (features built as rows, then <see cref="SimdGemm"/>) are their reference.
/// </summary>
internal static unsafe partial class TokenColumns
{
    // Every loop here is compiled fully optimized on first use (AggressiveOptimization): under tiered compilation, as in the
    // notebooks, the strip loops otherwise run unoptimized code for their first calls (the same holds for FeatureStates).
    const int Strip = 32;   // tokens per strip: two zmm of float32

    /// <summary>
    /// True where <see cref="Project"/> (u null) or <see cref="Gradient"/> takes an extended chunk [..., n, 2D̃], a state
    /// [..., F, C] of the chunk's leading dims and u [..., n, C]: those shapes, and <see cref="SupportsFused"/>.
    /// </summary>
    public static bool Supports(PackedTaylorFeatures features, Tensor extended, Tensor weightedState, Tensor? u, bool appendOne = false) =>
        weightedState.size(-2) == features.Size && weightedState.Shape()[..^2].SequenceEqual(extended.Shape()[..^2])
        && (u is null || (u.size(-1) + (appendOne ? 1 : 0) == weightedState.size(-1) && u.Shape()[..^2].SequenceEqual(extended.Shape()[..^2])))
        && (u is null ? SupportsFused(features, extended, weightedState) : SupportsFused(features, extended, weightedState, u));

    /// <summary>
    /// What the fused order-2 kernels (these and <see cref="FeatureStates"/>) need besides shapes: order 2, float32 CPU operands
    /// within one span, AVX-512, no autograd graph wanted.
    /// </summary>
    internal static bool SupportsFused(PackedTaylorFeatures features, Tensor extended, params Tensor[] others) =>
        features.Order == 2 && SimdGemm.Available && extended.dtype == ScalarType.Float32 && others.All(t => t.dtype == ScalarType.Float32)
        && TokenLoops.SupportsOutput(extended.numel() / Math.Max(1, extended.size(-1)) * features.Size, others.Prepend(extended).ToArray());

    /// <summary>
    /// φ(x̃)·W [..., n, C] for an extended x [..., n, 2D̃] and a weighted state W [..., F, C] with unit-stride rows or
    /// columns (column-narrowed and transposed views are read as they are): per strip, register tiles of up to 12 columns of W × 32 tokens over all F features,
    /// each feature built from x̃ in registers as the tile reaches it (two multiplies per 24 multiply-adds).
    /// </summary>
    /// <remarks>
    /// With <paramref name="centre"/>, a raw x [..., n, D] stands for x − mean(x) per token (centred in the strip's columns).
    /// With <paramref name="addTo"/> (float32 [..., n, C], unit-stride rows; <see cref="AddsTo"/>), the product is added to it
    /// strip by strip (one float32 addition an element, as adding a written product after) and it is returned.
    /// </remarks>
    public static Tensor Project(Tensor extended, Tensor weightedState, int d, int rows, bool centre = false, Tensor? addTo = null) =>
        Projected(extended, weightedState, d, rows, divide: false, centre, addTo).Output;

    /// <summary>
    /// <see cref="Project"/> with the output division fused into each strip: for a state whose last column gives the denominator
    /// g = φ(x̃)·W[:, C − 1], o = (φ(x̃)·W[:, :C − 1]) / g [..., n, C − 1] and g [..., n], the same bits as projecting and
    /// dividing after (one float32 division each), without writing and reading back the [..., n, C] product.
    /// </summary>
    /// <remarks>With <paramref name="centre"/>, a raw x [..., n, D] stands for x − mean(x) per token, as in <see cref="Project"/>.</remarks>
    public static (Tensor Output, Tensor Denominator) ProjectAndDivide(Tensor extended, Tensor weightedState, int d, int rows, bool centre = false)
    {
        var (output, denominator) = Projected(extended, weightedState, d, rows, divide: true, centre);
        return (output, denominator!);
    }

    static (Tensor Output, Tensor? Denominator) Projected(Tensor extended, Tensor weightedState, int d, int rows, bool divide, bool centre, Tensor? addTo = null)
    {
        int tilde = d + 1, size = tilde * rows, columns = (int)weightedState.size(-1), n = (int)extended.size(-2), width = (int)extended.size(-1);
        if (divide && columns < 1) throw new ArgumentException($"the state needs a denominator column; got {columns} columns", nameof(weightedState));
        if (centre && width != d) throw new ArgumentException($"only raw inputs x [..., n, D] are centred in cache; got width {width} at D = {d}", nameof(centre));
        int written = divide ? columns - 1 : columns;
        using var x = extended.contiguous();
        using var w = StateLayout(weightedState, out long rowStride, out long columnStride);
        var shape = extended.Shape().ToArray();
        shape[^1] = written;
        RequireAddTo(addTo, shape);
        var output = addTo ?? empty(shape, dtype: ScalarType.Float32, device: extended.device);
        var denominator = divide ? empty(shape[..^1], dtype: ScalarType.Float32, device: extended.device) : null;
        long slices = SliceCount(extended);
        if (slices == 0 || n == 0 || columns == 0) return (output, denominator);
        var offsets = SliceOffsets(w, (int)w.dim(), slices);
        // A new output is contiguous: slice s at s·n·C. Only a given target's layout is asked for (each query is a native call).
        var (outOffsets, ldOut) = addTo is null ? (null, written) : (SliceOffsets(addTo, (int)addTo.dim(), slices), addTo.stride(-2));
        int blocks = (columns + 11) / 12, perBlock = (columns + blocks - 1) / blocks;
        float* xs = Address(x), ws = Address(w), outs = Address(output), gs = divide ? Address(denominator!) : null;
        bool add = addTo is not null;
        ForStrips(slices, n, (long)size * columns, (tilde + columns) * Strip, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (slice, start, tokens, scratch) =>
        {
            float* xT = scratch, outT = scratch + tilde * Strip;
            long token0 = slice * n + start;
            TildeColumns(xs + token0 * width, width, tokens, d, xT);
            if (centre) CentreColumns(xT, d);
            for (int c0 = 0; c0 < columns; c0 += perBlock)
                ProjectTile(Math.Min(perBlock, columns - c0), ws + offsets[slice] + c0 * columnStride, rowStride, columnStride, xT, outT + c0 * Strip, tilde, rows);
            if (divide)
            {
                float* g = outT + written * Strip;   // the denominators of the strip's 32 tokens, a row of the column block
                var (g0, g1) = (Vector512.Load(g), Vector512.Load(g + 16));
                for (int c = 0; c < written; c++)
                {
                    float* row = outT + c * Strip;
                    (Vector512.Load(row) / g0).Store(row);
                    (Vector512.Load(row + 16) / g1).Store(row + 16);
                }
                new ReadOnlySpan<float>(g, tokens).CopyTo(new Span<float>(gs + token0, tokens));
            }
            FromColumns(outT, tokens, written, outs + (outOffsets is null ? token0 * written : outOffsets[slice] + start * ldOut), ldOut, add);
        });
        GC.KeepAlive(w);
        return (output, denominator);
    }

    /// <summary>
    /// ∂/∂x of Σ_c u_c Σ_f φ_f(x̃)·W_fc: dx [..., n, D] for u [..., n, C], a weighted state W [..., F, C] with unit-stride rows
    /// or columns and an extended x [..., n, 2D̃] (<see cref="PackedTaylorFeatures.Gradient"/>). Per strip, dφᵀ = W·uᵀ comes in
    /// register tiles of up to 12 features (i, d) of one i × 32 tokens, and each tile goes from its registers straight into the
    /// chain rule (<see cref="GradientTile"/>): a token-major form (dφ rows of tokens against shifted windows of x̃) would read
    /// unaligned vectors and pad each sum to whole vectors.
    /// </summary>
    /// <remarks>
    /// With <paramref name="centre"/>, a raw x [..., n, D] stands for c = x − mean(x) per token, and dx is the gradient with respect
    /// to x through the centring: ∇_c minus its mean over D. With <paramref name="appendOne"/>, u [..., n, C − 1] stands for [u, 1]
    /// (the keys' [v, 1]): the strip's column of ones is written in cache, so no [v, 1] copy is made. With <paramref name="addTo"/>
    /// (float32 [..., n, D], unit-stride rows), dx is added to it and it is returned, as in <see cref="Project"/>.
    /// </remarks>
    public static Tensor Gradient(Tensor u, Tensor weightedState, Tensor extended, int d, int rows, bool centre = false, bool appendOne = false, Tensor? addTo = null)
    {
        int tilde = d + 1, given = (int)u.size(-1), c = given + (appendOne ? 1 : 0), n = (int)u.size(-2), width = (int)extended.size(-1);
        if (centre && width != d) throw new ArgumentException($"only raw inputs x [..., n, D] are centred in cache; got width {width} at D = {d}", nameof(centre));
        using var uc = u.contiguous();
        using var w = StateLayout(weightedState, out long rowStride, out long columnStride);
        using var x = extended.contiguous();
        var shape = extended.Shape().ToArray();
        shape[^1] = d;
        RequireAddTo(addTo, shape);
        var dx = addTo ?? empty(shape, dtype: ScalarType.Float32, device: extended.device);
        long slices = SliceCount(extended);
        if (slices == 0 || n == 0) return dx;
        var offsets = SliceOffsets(w, (int)w.dim(), slices);
        var (dxOffsets, ldDx) = addTo is null ? (null, d) : (SliceOffsets(addTo, (int)addTo.dim(), slices), addTo.stride(-2));   // as in Projected
        bool add = addTo is not null;
        int tiles = (rows + 11) / 12, perTile = (rows + tiles - 1) / tiles;   // a feature row's Rows features in even tiles: 17 as 9 + 8
        float* us = Address(uc), ws = Address(w), xs = Address(x), dxs = Address(dx);
        ForStrips(slices, n, (long)tilde * rows * c, (c + 2 * tilde) * Strip, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (slice, start, tokens, scratch) =>
        {
            float* uT = scratch, xT = uT + c * Strip, dxT = xT + tilde * Strip;
            long token0 = slice * n + start;
            ToColumns(us + token0 * given, given, tokens, given, uT);
            if (appendOne) new Span<float>(uT + given * Strip, Strip).Fill(1);
            TildeColumns(xs + token0 * width, width, tokens, d, xT);
            if (centre) CentreColumns(xT, d);
            new Span<float>(dxT, tilde * Strip).Clear();
            float* state = ws + offsets[slice];
            for (int i = 0; i < tilde; i++)
                for (int shift = 0; shift < rows; shift += perTile)
                {
                    GradientTile(Math.Min(perTile, rows - shift), state + (i * rows + shift) * rowStride, rowStride, columnStride, uT, c, xT, dxT, i, (i + shift) % tilde, tilde);
                }
            if (centre) CentreColumns(dxT, d);   // the centring's gradient: each token's ∇_c minus its mean
            FromColumns(dxT, tokens, d, dxs + (dxOffsets is null ? token0 * d : dxOffsets[slice] + start * ldDx), ldDx, add);
        });
        GC.KeepAlive(w);
        return dx;
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

    /// <summary>
    /// x̃ = [x, 1] of <paramref name="tokens"/> rows (stride ld) as the columns of a [D̃, 32] block: the rows are extended
    /// [x̃, x̃] (ld = 2D̃) or raw x (ld = D), whose constant row is filled in here.
    /// </summary>
    static void TildeColumns(float* rows, int ld, int tokens, int d, float* columns)
    {
        if (ld != d)
        {
            ToColumns(rows, ld, tokens, d + 1, columns);
            return;
        }
        ToColumns(rows, ld, tokens, d, columns);
        new Span<float>(columns + d * Strip, Strip).Fill(1);
    }

    /// <summary>Each token (lane) of a [D, 32] column block minus its mean over the D rows; lanes past the last token stay zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void CentreColumns(float* columns, int d)
    {
        var (sum0, sum1) = (Vector512<float>.Zero, Vector512<float>.Zero);
        for (int i = 0; i < d; i++)
        {
            sum0 += Vector512.Load(columns + i * Strip);
            sum1 += Vector512.Load(columns + i * Strip + 16);
        }
        var width = Vector512.Create((float)d);
        var (mean0, mean1) = (sum0 / width, sum1 / width);
        for (int i = 0; i < d; i++)
        {
            float* row = columns + i * Strip;
            (Vector512.Load(row) - mean0).Store(row);
            (Vector512.Load(row + 16) - mean1).Store(row + 16);
        }
    }

    /// <summary>The first <paramref name="width"/> entries of <paramref name="tokens"/> rows (stride ld) as columns of a [width, 32] block, zeros past the last token.</summary>
    static void ToColumns(float* rows, int ld, int tokens, int width, float* columns) =>
        RegisterTranspose.ToColumns(rows, ld, tokens, width, columns, Strip);

    /// <summary>Columns [0, tokens) of a [width, 32] block back to rows (stride ld), or added to them.</summary>
    static void FromColumns(float* columns, int tokens, int width, float* rows, long ld, bool add = false) =>
        RegisterTranspose.FromColumns(columns, Strip, tokens, width, rows, ld, add);

    /// <summary>
    /// Whether a product of shape <paramref name="shape"/> can be added into <paramref name="addTo"/> in cache: the same shape and
    /// what the GEMM tiles write into (<see cref="SimdGemm.Writable"/>: float32 on the CPU, unit-stride rows that do not overlap,
    /// no autograd graph wanted); elsewhere the caller adds the written product.
    /// </summary>
    internal static bool AddsTo(Tensor addTo, long[] shape) => addTo.Shape().SequenceEqual(shape) && SimdGemm.Writable(addTo);

    static void RequireAddTo(Tensor? addTo, long[] shape)
    {
        if (addTo is not null && !AddsTo(addTo, shape))
            throw new ArgumentException(
                $"the product is added to a float32 [{string.Join(", ", shape)}] with unit-stride rows that do not overlap; got {addTo.dtype} [{string.Join(", ", addTo.Shape())}] with strides [{string.Join(", ", addTo.stride())}]", nameof(addTo));
    }

    /// <summary>Slices of x [..., n, ·] over its leading dims.</summary>
    internal static long SliceCount(Tensor x)
    {
        long slices = 1;
        for (int dim = 0; dim < x.dim() - 2; dim++) slices *= x.Shape()[dim];
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
