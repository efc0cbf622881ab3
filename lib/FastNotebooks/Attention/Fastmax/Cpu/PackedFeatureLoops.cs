using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;
using static FastNotebooks.Attention.Fastmax.Cpu.TokenLoops;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// The elementwise halves of <see cref="PackedTaylorFeatures"/> as one loop per token over CPU memory. libtorch
/// runs the same arithmetic as several broadcast passes with temporaries the size of the features (the chain rule
/// takes five); here each token's x̃ and feature row stay in L1 and every feature is read or written once. The
/// broadcast forms in <see cref="PackedTaylorFeatures"/> remain the reference the tests compare these with, and
/// serve every tensor these loops do not take (other devices, other dtypes).
/// </summary>
internal static class PackedFeatureLoops
{
    /// <summary>True where <see cref="Build"/> takes an extended chunk [..., n, 2D̃] (order 2).</summary>
    public static bool Supports(PackedTaylorFeatures features, Tensor extended) =>
        TokenLoops.SupportsOutput(extended.numel() / 2 * features.Rows, extended);

    /// <summary>True where <see cref="ChainRule"/> takes a feature gradient [..., n, F] of the extended chunk's own tokens.</summary>
    public static bool SupportsChainRule(PackedTaylorFeatures features, Tensor featureGradient, Tensor extended, Tensor u, Tensor weightedState) =>
        featureGradient.numel() / features.Size == extended.numel() / (2 * features.Extended)   // no broadcast between them
        && TokenLoops.SupportsOutput(featureGradient.numel(), extended, u, weightedState);

    /// <summary>True where <see cref="RunningStates"/> takes chunk states and a carry: one dtype, a contiguous carry.</summary>
    public static bool SupportsRunningStates(Tensor delta, Tensor carry) =>
        TokenLoops.SupportsOutput(delta.numel(), delta, carry) && carry.is_contiguous() && carry.dtype == delta.dtype;

    /// <summary>φ [..., n, F] (feature f = i·Rows + d holds x̃_i·x̃_(i+d)) from an extended x [..., n, 2D̃].</summary>
    public static Tensor Build(Tensor extended, int tilde, int rows)
    {
        using var x = extended.contiguous();
        var shape = extended.Shape().ToArray();
        shape[^1] = (long)tilde * rows;
        var features = empty(shape, dtype: extended.dtype, device: extended.device);
        long tokens = x.numel() / (2L * tilde);
        ForTokenRanges(tokens, (long)tilde * rows, (start, count) =>
        {
            if (x.dtype == ScalarType.Float32) Build<float>(x, features, start, count, tilde, rows);
            else Build<double>(x, features, start, count, tilde, rows);
        });
        return features;
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
        var shape = extended.Shape().ToArray();
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
    /// (reversed for suffix states), out[g, c, :] = w ⊙ running[c, :], then running += delta[g]; all along contiguous rows of F.
    /// The result is laid out [..., G, C, F] and returned as its transposed view [..., G, F, C], which the token-column kernels
    /// read as it is. The tensor-op form reads and writes the G chunk states six times (cumulative sum, difference, carry,
    /// sum, weights, transposed copy), and a transposed copy here would be a sizeable part of the causal forward.
    /// With <paramref name="into"/> (delta's shape, <see cref="WritableStates"/>) the states are written there, a view of a
    /// larger tensor (the causal forward keeping every chunk's state), and its transposed view is returned.
    /// </summary>
    public static unsafe Tensor RunningStates(Tensor delta, Tensor carry, double[] weights, bool reverse, Tensor? into = null)
    {
        using var d = delta.contiguous();
        var states = into ?? empty(delta.Shape(), dtype: delta.dtype, device: delta.device);      // [..., G, C, F]
        long g = delta.size(-3);
        int c = (int)delta.size(-2), f = (int)delta.size(-1);
        long slices = delta.numel() / Math.Max(1, g * c * f);
        if (slices == 0) return states.transpose(-1, -2);
        // A new tensor's slices lie at s·G·C·F; a given one's where its leading dims put them.
        long[] offsets = into is null ? Enumerable.Range(0, (int)slices).Select(s => s * g * c * f).ToArray() : SimdGemm.SliceOffsets(states, (int)states.dim() - 1, slices);
        byte* target = (byte*)SimdGemm.Address(states);
        int threads = ThreadsFor(slices, (double)delta.numel());
        void Slice(long slice)
        {
            if (d.dtype == ScalarType.Float32) RunningStates<float>(d, carry, (float*)target + offsets[slice], weights, slice, g, c, f, reverse);
            else RunningStates<double>(d, carry, (double*)target + offsets[slice], weights, slice, g, c, f, reverse);
        }
        if (threads == 1) for (long slice = 0; slice < slices; slice++) Slice(slice);
        else SharedPieces.For(slices, threads, Slice);
        GC.KeepAlive(states);
        return states.transpose(-1, -2);
    }

    /// <summary>
    /// Whether <see cref="RunningStates"/> can write into <paramref name="into"/> for chunk states shaped like <paramref name="delta"/>:
    /// the same shape and dtype, each chunk's [C, F] state contiguous and the G chunks of a slice one after another.
    /// </summary>
    public static bool WritableStates(Tensor into, Tensor delta) =>
        into.Shape().SequenceEqual(delta.Shape()) && into.dtype == delta.dtype && WritableLayout(into);

    /// <summary>Whether chunk states [..., G, C, F] can be written into <paramref name="into"/> as they lie (<see cref="WritableStates"/>'s layout conditions).</summary>
    public static bool WritableLayout(Tensor into) =>
        into.device_type == DeviceType.CPU && into.dim() >= 3
        && (into.stride(-1) == 1 || into.size(-1) <= 1) && (into.stride(-2) == into.size(-1) || into.size(-2) <= 1)
        && (into.stride(-3) == into.size(-2) * into.size(-1) || into.size(-3) <= 1)
        && !(is_grad_enabled() && into.requires_grad);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void RunningStates<T>(Tensor deltaIn, Tensor carryIn, T* statesOut, double[] weights, long slice, long chunks, int c, int f, bool reverse)
        where T : unmanaged, INumber<T>
    {
        int size = c * f;
        var delta = Elements<T>(deltaIn).Slice((int)(slice * chunks * size), (int)(chunks * size));
        var running = Elements<T>(carryIn).Slice((int)(slice * size), size);
        var states = new Span<T>(statesOut, (int)(chunks * size));
        Span<T> w = f <= 4096 ? stackalloc T[f] : new T[f];
        for (int j = 0; j < f; j++) w[j] = T.CreateChecked(weights[j]);
        for (long step = 0; step < chunks; step++)
        {
            long chunk = reverse ? chunks - 1 - step : step;
            var state = states.Slice((int)(chunk * size), size);
            var chunkDelta = delta.Slice((int)(chunk * size), size);
            for (int column = 0; column < c; column++)
            {
                var row = running.Slice(column * f, f);
                Multiply<T>(row, w, state.Slice(column * f, f));
                Accumulate<T>(chunkDelta.Slice(column * f, f), row);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Build<T>(Tensor extended, Tensor features, long start, long count, int tilde, int rows)
        where T : unmanaged, INumber<T>
    {
        var x = Elements<T>(extended);
        var phi = Elements<T>(features);
        int size = tilde * rows;
        for (long t = start; t < start + count; t++)
        {
            var xt = x.Slice((int)(t * 2 * tilde), 2 * tilde);
            var row = phi.Slice((int)(t * size), size);
            for (int i = 0; i < tilde; i++)
                Scale(xt.Slice(i, rows), xt[i], row.Slice(i * rows, rows));
        }
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
