using System.Buffers;
using TorchSharp;
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
        u.Shape()[..^1].SequenceEqual(extended.Shape()[..^1]) && TokenColumns.SupportsFused(features, extended, u);

    const int Block = 64;   // tokens whose features are built and multiplied together

    /// <summary>uᵀ·φ(x̃) [..., C, F] for an extended x [..., n, 2D̃] and u [..., n, C] with equal leading dims.</summary>
    /// <remarks>
    /// With <paramref name="appendOne"/>, u [..., n, C − 1] stands for [u, 1]; with <paramref name="centre"/>, a raw x [..., n, D] stands for
    /// x − mean(x) per token (both the state panels only: D̃ ≥ 32).
    /// </remarks>
    public static Tensor Transposed(Tensor extended, Tensor u, int d, int rows, bool appendOne = false, bool centre = false)
    {
        if (centre && !(extended.size(-1) == d && StatePanels.Supports(d)))
            throw new ArgumentException($"raw inputs are centred in cache by the state panels only (D + 1 ≥ 32, x [..., n, D]); got D = {d}, width {extended.size(-1)}", nameof(centre));
        if (appendOne && !StatePanels.Supports(d))
            throw new ArgumentException($"a column of ones is added in cache by the state panels only (D + 1 ≥ 32); got D = {d}", nameof(appendOne));
        int tilde = d + 1, size = tilde * rows, c = (int)u.size(-1) + (appendOne ? 1 : 0), n = (int)extended.size(-2);
        bool raw = extended.size(-1) == d && StatePanels.Supports(d);   // the panels build [x̃, x̃] in cache; the rows below need it extended
        using var ones = extended.size(-1) == d && !raw ? ones_like(extended.narrow(-1, 0, 1)) : null;
        using var x = ones is null ? extended.contiguous() : cat(new[] { extended, ones, extended, ones }, -1);
        using var uc = u.contiguous();
        var shape = u.Shape().ToArray();
        (shape[^2], shape[^1]) = (c, size);
        long slices = TokenColumns.SliceCount(u);
        var sums = n == 0 ? zeros(shape, dtype: ScalarType.Float32, device: u.device) : empty(shape, dtype: ScalarType.Float32, device: u.device);   // every block but the first adds to what the first wrote
        if (slices == 0 || n == 0 || c == 0) return sums;
        float* xs = SimdGemm.Address(x), us = SimdGemm.Address(uc), target = SimdGemm.Address(sums);
        // Threads take whole slices, so each sum is added up in the same order whatever their number.
        TokenLoops.ForTokenRanges(slices, (long)n * size * c, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, count) =>
        {
            if (StatePanels.Supports(d))
            {
                StatePanels.Slices(xs, us, target, first, count, n, c, d, rows, raw, appendOne, centre);
                return;
            }
            float[] buffer = ArrayPool<float>.Shared.Rent(Block * size + c * size + Block * 32);
            try
            {
                fixed (float* scratch = buffer)
                {
                    float* phi = scratch, product = phi + Block * size, packed = product + c * size;
                    for (long slice = first; slice < first + count; slice++)
                    {
                        float* sum = target + slice * c * size;
                        for (int start = 0; start < n; start += Block)
                        {
                            int tokens = Math.Min(Block, n - start);
                            long token0 = slice * n + start;
                            BuildRows(xs + token0 * 2 * tilde, tokens, tilde, rows, phi);
                            // The first block writes the sum, the others add their product to it.
                            SimdGemm.Product(us + token0 * c, 1, c, phi, size, start == 0 ? sum : product, size, c, tokens, size, packed);
                            if (start > 0) TokenLoops.Accumulate<float>(new ReadOnlySpan<float>(product, c * size), new Span<float>(sum, c * size));
                        }
                    }
                }
            }
            finally { ArrayPool<float>.Shared.Return(buffer); }
        });
        GC.KeepAlive(x);
        GC.KeepAlive(uc);
        return sums;
    }

    /// <summary>
    /// True where <see cref="RunningTransposed"/> takes chunks x [..., G, n, ·] (extended, or raw x [..., G, n, D]) and u
    /// [..., G, n, C] with a carry [..., C, F]: what <see cref="Transposed"/> takes, on the state panels (D̃ ≥ 32), with tokens in
    /// every chunk, and a contiguous float32 carry of those leading dims (C columns: u's, and one more with <paramref name="appendOne"/>).
    /// </summary>
    public static bool SupportsRunning(PackedTaylorFeatures features, Tensor extended, Tensor u, Tensor carry, bool appendOne = false) =>
        Supports(features, extended, u) && StatePanels.Supports(features.D) && u.dim() >= 3 && u.size(-2) > 0
        && carry.dtype == ScalarType.Float32 && carry.is_contiguous() && carry.device_type == DeviceType.CPU
        && carry.Shape().SequenceEqual(u.Shape()[..^3].Append(u.size(-1) + (appendOne ? 1 : 0)).Append(features.Size));

    /// <summary>
    /// The weighted states before (after, when <paramref name="reverse"/>) each of G chunks, w ⊙ (carry + Σ of the earlier (later)
    /// chunks' uᵀ·φ(x̃)), [..., G, C, F], with the carry moved past the chunks: <see cref="Transposed"/> of every chunk and
    /// <see cref="PackedFeatureLoops.RunningStates"/> in one pass (<see cref="StatePanels.RunningSlices"/>), each chunk's sums
    /// added to the running state from the tiles' scratch in cache rather than written and read back; the same bits.
    /// With <paramref name="into"/> (<see cref="PackedFeatureLoops.WritableStates"/>) the states are written there; with
    /// <paramref name="appendOne"/>, u [..., G, n, C − 1] stands for [u, 1] (the ones added a block of tokens at a time in cache).
    /// </summary>
    public static Tensor RunningTransposed(Tensor extended, Tensor u, Tensor carry, double[] weights, int d, int rows, bool reverse, Tensor? into = null,
        bool appendOne = false)
    {
        int size = (d + 1) * rows, c = (int)u.size(-1) + (appendOne ? 1 : 0), n = (int)u.size(-2);
        long chunks = u.size(-3);
        if (weights.Length != size) throw new ArgumentException($"the weights have one entry a feature ({size}); got {weights.Length}", nameof(weights));
        bool raw = extended.size(-1) == d;
        using var x = extended.contiguous();
        using var uc = u.contiguous();
        var shape = u.Shape().ToArray();
        (shape[^2], shape[^1]) = (c, size);
        var states = into ?? empty(shape, dtype: ScalarType.Float32, device: u.device);   // [..., G, C, F]
        if (into is not null && !(PackedFeatureLoops.WritableLayout(into) && into.Shape().SequenceEqual(shape) && into.dtype == ScalarType.Float32))
            throw new ArgumentException($"the states are written as float32 [{string.Join(", ", shape)}] with each chunk's [C, F] contiguous and a slice's chunks in a row; got {into.dtype} [{string.Join(", ", into.Shape())}] of strides [{string.Join(", ", into.Strides())}]", nameof(into));
        long heads = carry.numel() / Math.Max(1, (long)c * size);
        if (heads == 0 || chunks == 0 || c == 0) return states;
        long[] headOffsets = into is null ? Enumerable.Range(0, (int)heads).Select(h => h * chunks * c * size).ToArray() : SimdGemm.SliceOffsets(states, (int)states.dim() - 1, heads);
        var offsets = new long[heads * chunks];
        for (long h = 0; h < heads; h++)
            for (long g = 0; g < chunks; g++) offsets[h * chunks + g] = headOffsets[h] + g * c * size;
        var w = weights.Select(v => (float)v).ToArray();
        float* xs = SimdGemm.Address(x), us = SimdGemm.Address(uc), target = SimdGemm.Address(states), running = SimdGemm.Address(carry);
        fixed (float* ws = w)
        {
            float* weightsPointer = ws;
            // Threads take whole heads: each head's chunks run in order, and each sum is added up in the same order whatever their number.
            TokenLoops.ForTokenRanges(heads, chunks * n * size * c, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, count) =>
                StatePanels.RunningSlices(xs, us, running, weightsPointer, target, offsets, first, count, chunks, n, c, d, rows, raw, appendOne, reverse));
        }
        GC.KeepAlive(x);
        GC.KeepAlive(uc);
        GC.KeepAlive(carry);
        return states;
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
