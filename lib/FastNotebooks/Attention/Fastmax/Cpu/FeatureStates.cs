using System.Buffers;
using System.Runtime.CompilerServices;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// The sums over tokens Σ_t u_t ⊗ φ(x̃_t) — the key state [v, 1]ᵀ·φ(k̃), the query state [Ĝ, −r]ᵀ·φ(q̃), the causal chunk
/// states — in float32 with AVX-512, with the packed order-2 features built 64 tokens at a time into a buffer that stays in
/// cache (64 × 561 floats, 144 KB at D = 32) and multiplied there by <see cref="SimdGemm"/>'s tiles, the block products
/// summed in place: building a whole chunk of rows first (1024 tokens, 2.3 MB at D = 32) would send the features through
/// memory twice. For D̃ ≥ 32 the features are not stored at all (<see cref="StatePanels"/>). The token-major form in <see cref="PackedTaylorFeatures.StateTransposed"/>
/// (features built per chunk, then a GEMM) is the reference.
/// </summary>
internal static unsafe class FeatureStates
{
    /// <summary>
    /// True where <see cref="Transposed"/> takes an extended chunk [..., n, 2D̃] and u [..., n, C]: equal leading dims, and
    /// what every fused order-2 kernel needs (<see cref="TokenColumns.SupportsFused"/>).
    /// </summary>
    public static bool Supports(PackedTaylorFeatures features, Tensor extended, Tensor u) =>
        u.shape[..^1].SequenceEqual(extended.shape[..^1]) && TokenColumns.SupportsFused(features, extended, u);

    const int Block = 64;   // tokens whose features are built and multiplied together

    /// <summary>
    /// Tokens per segment (at least; <see cref="MaxSegments"/>): a long sequence's sum is taken as partial sums over segments of this many tokens, added in order at
    /// the end, so the threads share one head's tokens (a single head, or the one-head groups the unmasked path takes for many
    /// heads; several heads already go to the threads as whole slices) and the result is the same whatever their number: the
    /// segments depend on n only.
    /// </summary>
    internal const int SegmentTokens = 1024;

    /// <summary>Most segments per slice: longer sequences get longer segments, so the partial sums stay within 15 states per slice.</summary>
    internal const int MaxSegments = 16;

    /// <summary>uᵀ·φ(x̃) [..., C, F] for an extended x [..., n, 2D̃] and u [..., n, C] with equal leading dims.</summary>
    public static Tensor Transposed(Tensor extended, Tensor u, int d, int rows)
    {
        int tilde = d + 1, size = tilde * rows, c = (int)u.shape[^1], n = (int)extended.shape[^2];
        using var x = extended.contiguous();
        using var uc = u.contiguous();
        var shape = u.shape.ToArray();
        (shape[^2], shape[^1]) = (c, size);
        long slices = TokenColumns.SliceCount(u);
        var sums = n == 0 ? zeros(shape, dtype: ScalarType.Float32, device: u.device) : empty(shape, dtype: ScalarType.Float32, device: u.device);   // every block but the first adds to what the first wrote
        if (slices == 0 || n == 0 || c == 0) return sums;
        int segmentTokens = Math.Max(SegmentTokens, ((n + MaxSegments - 1) / MaxSegments + Block - 1) / Block * Block);
        int segments = (n + segmentTokens - 1) / segmentTokens;
        long sumSize = (long)c * size;
        // Segment 0 of each slice sums into the result, the others into their own partial sums [slices, segments − 1, C, F].
        using var partial = segments > 1 ? empty(new[] { slices * (segments - 1), sumSize }, dtype: ScalarType.Float32, device: u.device) : null;
        float* xs = SimdGemm.Address(x), us = SimdGemm.Address(uc), target = SimdGemm.Address(sums);
        float* partials = partial is null ? null : SimdGemm.Address(partial);
        TokenLoops.ForTokenRanges(slices * segments, (long)Math.Min(n, segmentTokens) * size * c, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, count) =>
        {
            float[]? buffer = StatePanels.Supports(d) ? null : ArrayPool<float>.Shared.Rent(Block * size + c * size + Block * 32);
            try
            {
                for (long item = first; item < first + count; item++)
                {
                    long slice = item / segments;
                    int segment = (int)(item % segments), start = segment * segmentTokens, tokens = Math.Min(segmentTokens, n - start);
                    long token0 = slice * n + start;
                    float* sum = segment == 0 ? target + slice * sumSize : partials + (slice * (segments - 1) + segment - 1) * sumSize;
                    if (buffer is null) StatePanels.Slices(xs + token0 * 2 * tilde, us + token0 * c, sum, 0, 1, tokens, c, d, rows);
                    else Sum(xs + token0 * 2 * tilde, us + token0 * c, sum, tokens, c, tilde, rows, buffer);
                }
            }
            finally { if (buffer is not null) ArrayPool<float>.Shared.Return(buffer); }
        });
        for (long slice = 0; slice < slices; slice++)
            for (int segment = 1; segment < segments; segment++)
                TokenLoops.Accumulate<float>(new ReadOnlySpan<float>(partials + (slice * (segments - 1) + segment - 1) * sumSize, (int)sumSize),
                    new Span<float>(target + slice * sumSize, (int)sumSize));
        GC.KeepAlive(x);
        GC.KeepAlive(uc);
        return sums;
    }

    /// <summary>uᵀ·φ(x̃) [C, F] of <paramref name="tokens"/> consecutive extended rows x and rows u into <paramref name="sum"/>: feature rows of 64 tokens at a time and <see cref="SimdGemm"/>'s tiles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Sum(float* x, float* u, float* sum, int tokens, int c, int tilde, int rows, float[] buffer)
    {
        int size = tilde * rows;
        fixed (float* scratch = buffer)
        {
            float* phi = scratch, product = phi + Block * size, packed = product + c * size;
            for (int start = 0; start < tokens; start += Block)
            {
                int block = Math.Min(Block, tokens - start);
                BuildRows(x + (long)start * 2 * tilde, block, tilde, rows, phi);
                // The first block writes the sum, the others add their product to it.
                SimdGemm.Product(u + (long)start * c, 1, c, phi, size, start == 0 ? sum : product, size, c, block, size, packed);
                if (start > 0) TokenLoops.Accumulate<float>(new ReadOnlySpan<float>(product, c * size), new Span<float>(sum, c * size));
            }
        }
    }

    /// <summary>φ rows [tokens, F] (f = i·Rows + d holds x̃_i·x̃_(i+d)) of consecutive extended tokens [x̃, x̃] into <paramref name="phi"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void BuildRows(float* x, int tokens, int tilde, int rows, float* phi)
    {
        int size = tilde * rows;
        for (int t = 0; t < tokens; t++, x += 2 * tilde, phi += size)
            for (int i = 0; i < tilde; i++)
                TokenLoops.Scale<float>(new ReadOnlySpan<float>(x + i, rows), x[i], new Span<float>(phi + i * rows, rows));
    }
}
