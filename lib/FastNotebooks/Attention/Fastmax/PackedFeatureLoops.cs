using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;
using static FastNotebooks.Attention.Fastmax.TokenLoops;

namespace FastNotebooks.Attention.Fastmax;

/// <summary>
/// The elementwise halves of <see cref="PackedTaylorFeatures"/> as one loop per token over CPU memory. libtorch
/// runs the same arithmetic as several broadcast passes with temporaries the size of the features (the chain rule
/// takes five); here each token's x̃ and feature row stay in L1 and every feature is read or written once. The
/// broadcast forms in <see cref="PackedTaylorFeatures"/> remain the reference the tests compare these with, and
/// serve every tensor these loops do not take (other devices, other dtypes).
/// </summary>
internal static class PackedFeatureLoops
{
    /// <summary>φ [..., n, F] (feature f = i·Rows + d holds x̃_i·x̃_(i+d)) from an extended x [..., n, 2D̃].</summary>
    public static Tensor Build(Tensor extended, int tilde, int rows) => BuildAndProject(extended, null, tilde, rows).Features;

    /// <summary>
    /// φ [..., n, F] and, when a column c [..., F, 1] is given (one per leading slice, e.g. per head), φ·c [..., n, 1]
    /// from each row while it is still in L1: the forward's denominator without a second pass over the features.
    /// </summary>
    public static (Tensor Features, Tensor? Projection) BuildAndProject(Tensor extended, Tensor? column, int tilde, int rows)
    {
        using var x = extended.contiguous();
        using var c = column?.contiguous();
        var shape = extended.shape.ToArray();
        shape[^1] = (long)tilde * rows;
        var features = empty(shape, dtype: extended.dtype, device: extended.device);
        shape[^1] = 1;
        var projection = column is null ? null : empty(shape, dtype: extended.dtype, device: extended.device);
        long tokens = x.numel() / (2L * tilde), perSlice = Math.Max(1, extended.shape[^2]);
        ForTokenRanges(tokens, (long)tilde * rows, (start, count) =>
        {
            if (x.dtype == ScalarType.Float32) Build<float>(x, features, c, projection, perSlice, start, count, tilde, rows);
            else Build<double>(x, features, c, projection, perSlice, start, count, tilde, rows);
        });
        return (features, projection);
    }

    /// <summary>
    /// dx [..., n, D] from the feature gradient dφ [..., n, F] in d-major order (entry d·D̃ + i is ∂L/∂φ_(i,d))
    /// and the extended x [..., n, 2D̃]: dx_m = Σ_d dφ_(m,d)·x̃_(m+d) + Σ_d dφ_(m−d,d)·x̃_(m−d), indices mod D̃.
    /// </summary>
    public static Tensor ChainRule(Tensor featureGradient, Tensor extended, int d, int rows)
    {
        int tilde = d + 1;
        using var g = featureGradient.contiguous();
        using var x = extended.contiguous();
        var shape = extended.shape.ToArray();
        shape[^1] = d;
        var dx = empty(shape, dtype: extended.dtype, device: extended.device);
        long tokens = x.numel() / (2L * tilde);
        ForTokenRanges(tokens, 2L * tilde * rows, (start, count) =>
        {
            if (x.dtype == ScalarType.Float32) ChainRule<float>(g, x, dx, start, count, d, rows);
            else ChainRule<double>(g, x, dx, start, count, d, rows);
        });
        return dx;
    }

    /// <summary>
    /// <see cref="PackedTaylorFeatures.RunningStates"/> in one pass over the chunk states: for each slice and chunk in order
    /// (reversed for suffix states), out[g, f, c] = w_f·running[c, f], then running += delta[g]. The tensor-op form reads and
    /// writes the G chunk states six times (cumulative sum, difference, carry, sum, weights, transposed copy).
    /// </summary>
    public static Tensor RunningStates(Tensor delta, Tensor carry, double[] weights, bool reverse)
    {
        using var d = delta.contiguous();
        var shape = delta.shape.ToArray();
        (shape[^1], shape[^2]) = (shape[^2], shape[^1]);
        var states = empty(shape, dtype: delta.dtype, device: delta.device);                 // [..., G, F, C]
        long g = delta.shape[^3];
        int c = (int)delta.shape[^2], f = (int)delta.shape[^1];
        long slices = delta.numel() / Math.Max(1, g * c * f);
        int threads = ThreadsFor(slices, (double)delta.numel());
        void Slice(long slice)
        {
            if (d.dtype == ScalarType.Float32) RunningStates<float>(d, carry, states, weights, slice, g, c, f, reverse);
            else RunningStates<double>(d, carry, states, weights, slice, g, c, f, reverse);
        }
        if (threads == 1) for (long slice = 0; slice < slices; slice++) Slice(slice);
        else Parallel.For(0L, slices, new ParallelOptions { MaxDegreeOfParallelism = threads }, Slice);
        return states;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RunningStates<T>(Tensor deltaIn, Tensor carryIn, Tensor statesOut, double[] weights, long slice, long chunks, int c, int f, bool reverse)
        where T : unmanaged, INumber<T>
    {
        int size = c * f;
        var delta = Elements<T>(deltaIn).Slice((int)(slice * chunks * size), (int)(chunks * size));
        var running = Elements<T>(carryIn).Slice((int)(slice * size), size);
        var states = Elements<T>(statesOut).Slice((int)(slice * chunks * size), (int)(chunks * size));
        Span<T> w = f <= 4096 ? stackalloc T[f] : new T[f];
        for (int j = 0; j < f; j++) w[j] = T.CreateChecked(weights[j]);
        for (long step = 0; step < chunks; step++)
        {
            long chunk = reverse ? chunks - 1 - step : step;
            var state = states.Slice((int)(chunk * size), size);
            var chunkDelta = delta.Slice((int)(chunk * size), size);
            // The transposed writes go 16 features at a time, so the rows of the state they land in stay in L1.
            for (int block = 0; block < f; block += 16)
            {
                int end = Math.Min(f, block + 16);
                for (int column = 0; column < c; column++)
                    for (int j = block; j < end; j++) state[j * c + column] = w[j] * running[column * f + j];
            }
            for (int column = 0; column < c; column++) Accumulate<T>(chunkDelta.Slice(column * f, f), running.Slice(column * f, f));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Build<T>(Tensor extended, Tensor features, Tensor? column, Tensor? projection, long perSlice,
        long start, long count, int tilde, int rows)
        where T : unmanaged, INumber<T>
    {
        var x = Elements<T>(extended);
        var phi = Elements<T>(features);
        var c = column is null ? default : Elements<T>(column);
        var dot = projection is null ? default : Elements<T>(projection);
        int size = tilde * rows;
        for (long t = start; t < start + count; t++)
        {
            var xt = x.Slice((int)(t * 2 * tilde), 2 * tilde);
            var row = phi.Slice((int)(t * size), size);
            for (int i = 0; i < tilde; i++)
                Scale(xt.Slice(i, rows), xt[i], row.Slice(i * rows, rows));
            if (projection is not null) dot[(int)t] = Dot<T>(row, c.Slice((int)(t / perSlice * size), size));
        }
    }

    /// <summary>
    /// The whole gradient of <see cref="PackedTaylorFeatures.Gradient"/> in float32 with AVX-512, with tokens across the
    /// vector lanes: for 32 tokens at a time, the transposed feature gradient dφᵀ = W·uᵀ comes in register tiles of up to
    /// 12 features (i, d) of one i × 32 tokens (W [..., F, C] the weighted state in its own order, f = i·Rows + d) and each
    /// tile goes straight into the chain rule, dx̃_i += dφ_f·x̃_j and dx̃_j += dφ_f·x̃_i with j = (i + d) mod D̃: whole aligned
    /// vectors, four multiply-adds per feature and 32 tokens, where the token-major form (dφ rows against shifted windows
    /// of x̃) read unaligned vectors and padded every sum to whole vectors. u [..., n, C], the extended x [..., n, 2D̃];
    /// returns dx [..., n, D]. Measured at n = 832, D = 32, C = 33, one thread: 0.21 ms, of which the tiles take 0.15 and the
    /// chain rule 0.035; the token-major form took 0.37 ms.
    /// </summary>
    public static unsafe Tensor GradientByTokenColumns(Tensor u, Tensor weightedState, Tensor extended, int d, int rows)
    {
        const int strip = 32;
        int tilde = d + 1, size = tilde * rows, c = (int)u.shape[^1], n = (int)u.shape[^2];
        using var uc = u.contiguous();
        using var w = weightedState.contiguous();
        using var x = extended.contiguous();
        var shape = extended.shape.ToArray();
        shape[^1] = d;
        var dx = empty(shape, dtype: extended.dtype, device: extended.device);
        long slices = n == 0 ? 0 : dx.numel() / ((long)n * Math.Max(1, d));
        if (slices == 0 || d == 0) return dx;
        int strips = (n + strip - 1) / strip;
        int tiles = (rows + 11) / 12, perTile = (rows + tiles - 1) / tiles;   // a feature row's Rows features in even tiles: 17 as 9 + 8
        float* us = (float*)SimdGemm.Address(uc), ws = (float*)SimdGemm.Address(w), xs = (float*)SimdGemm.Address(x), dxs = (float*)SimdGemm.Address(dx);
        ForTokenRanges(slices * strips, (long)size * c * strip, (first, count) =>
        {
            // Per strip: its u transposed [C, 32], x̃ [D̃, 32], dx̃ [D̃, 32] and one tile [12, 32], 64-byte aligned.
            int scratch = (c + 2 * tilde + 12) * strip;
            float[] buffer = ArrayPool<float>.Shared.Rent(scratch + 16);
            using var pin = buffer.AsMemory().Pin();
            float* uT = (float*)(((nint)pin.Pointer + 63) & ~(nint)63), xT = uT + c * strip, dxT = xT + tilde * strip, tile = dxT + tilde * strip;
            try { Strips(first, count, uT, xT, dxT, tile); }
            finally { ArrayPool<float>.Shared.Return(buffer); }
        });
        return dx;

        void Strips(long first, long count, float* uT, float* xT, float* dxT, float* tile)
        {
            for (long item = first; item < first + count; item++)
            {
                long slice = item / strips;
                int start = (int)(item % strips) * strip, tokens = Math.Min(strip, n - start);
                long token0 = slice * n + start;
                if (tokens < strip)
                {
                    new Span<float>(uT, c * strip).Clear();
                    new Span<float>(xT, tilde * strip).Clear();
                }
                for (int t = 0; t < tokens; t++)
                {
                    float* ut = us + (token0 + t) * c, xt = xs + (token0 + t) * 2 * tilde;
                    for (int k = 0; k < c; k++) uT[k * strip + t] = ut[k];
                    for (int i = 0; i < tilde; i++) xT[i * strip + t] = xt[i];
                }
                new Span<float>(dxT, tilde * strip).Clear();
                float* state = ws + slice * size * c;
                for (int i = 0; i < tilde; i++)
                    for (int shift = 0; shift < rows; shift += perTile)
                    {
                        int tileRows = Math.Min(perTile, rows - shift);
                        SimdGemm.TileProduct(tileRows, state + (long)(i * rows + shift) * c, c, 1, uT, strip, c, tile, strip);
                        ChainRuleColumns(tile, tileRows, xT, dxT, i, (i + shift) % tilde, tilde);
                    }
                for (int t = 0; t < tokens; t++)
                {
                    float* dxt = dxs + (token0 + t) * d;
                    for (int m = 0; m < d; m++) dxt[m] = dxT[m * strip + t];
                }
            }
        }
    }

    /// <summary>
    /// The chain rule for one tile of features (i, d), d = shift … shift + count − 1, and 32 tokens: dx̃_j += dφ·x̃_i for each
    /// j = (i + d) mod D̃, and dx̃_i += Σ_d dφ·x̃_j summed in registers first (the diagonal d = 0, j = i, gets both terms).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void ChainRuleColumns(float* tile, int count, float* xT, float* dxT, int i, int j, int tilde)
    {
        const int strip = 32;
        var (xi0, xi1) = (Vector512.Load(xT + i * strip), Vector512.Load(xT + i * strip + 16));
        Vector512<float> sum0 = default, sum1 = default;
        for (int r = 0; r < count; r++, j = j + 1 == tilde ? 0 : j + 1)
        {
            var (g0, g1) = (Vector512.Load(tile + r * strip), Vector512.Load(tile + r * strip + 16));
            float* xj = xT + j * strip, dxj = dxT + j * strip;
            sum0 = Vector512.FusedMultiplyAdd(g0, Vector512.Load(xj), sum0);
            sum1 = Vector512.FusedMultiplyAdd(g1, Vector512.Load(xj + 16), sum1);
            Vector512.FusedMultiplyAdd(g0, xi0, Vector512.Load(dxj)).Store(dxj);
            Vector512.FusedMultiplyAdd(g1, xi1, Vector512.Load(dxj + 16)).Store(dxj + 16);
        }
        float* dxi = dxT + i * strip;
        (Vector512.Load(dxi) + sum0).Store(dxi);
        (Vector512.Load(dxi + 16) + sum1).Store(dxi + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ChainRule<T>(Tensor featureGradient, Tensor extended, Tensor result, long start, long count, int d, int rows)
        where T : unmanaged, INumber<T>
    {
        var g = Elements<T>(featureGradient);
        var x = Elements<T>(extended);
        var dx = Elements<T>(result);
        int tilde = d + 1, size = tilde * rows;
        Span<T> asFirst = stackalloc T[tilde];
        Span<T> asSecond = stackalloc T[2 * tilde];
        for (long t = start; t < start + count; t++)
            ChainRuleToken<T>(g.Slice((int)(t * size), size), x.Slice((int)(t * 2 * tilde), 2 * tilde), dx.Slice((int)(t * d), d), asFirst, asSecond, d, rows);
    }

    /// <summary>One token's dx [D] from its d-major dφ [F] and extended x̃ [2D̃], with two scratch rows of D̃ and 2D̃.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void ChainRuleToken<T>(ReadOnlySpan<T> gt, ReadOnlySpan<T> xt, Span<T> dxt, Span<T> asFirst, Span<T> asSecond, int d, int rows)
        where T : unmanaged, INumber<T>
    {
        int tilde = d + 1;
        asFirst.Clear();   // Σ_d dφ_(m,d)·x̃_(m+d)
        asSecond.Clear();  // Σ_d dφ_(i,d)·x̃_i at i + d, folded mod D̃ below
        for (int shift = 0; shift < rows; shift++)
        {
            var gd = gt.Slice(shift * tilde, tilde);
            MultiplyAdd(gd, xt.Slice(shift, tilde), asFirst);
            MultiplyAdd(gd, xt.Slice(0, tilde), asSecond.Slice(shift, tilde));
        }
        for (int m = 0; m < d; m++) dxt[m] = asFirst[m] + asSecond[m] + asSecond[m + tilde];
    }
}
