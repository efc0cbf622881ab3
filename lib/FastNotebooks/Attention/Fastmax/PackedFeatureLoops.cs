using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

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
    /// <summary>True for tensors these loops can read directly: CPU memory in float32 or float64.</summary>
    public static bool Applies(Tensor x) =>
        x.device_type == DeviceType.CPU && x.dtype is ScalarType.Float32 or ScalarType.Float64;

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
        ForTokenRanges(tokens, (start, count) =>
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
        ForTokenRanges(tokens, (start, count) =>
        {
            if (x.dtype == ScalarType.Float32) ChainRule<float>(g, x, dx, start, count, d, rows);
            else ChainRule<double>(g, x, dx, start, count, d, rows);
        });
        return dx;
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ChainRule<T>(Tensor featureGradient, Tensor extended, Tensor result, long start, long count, int d, int rows)
        where T : unmanaged, INumber<T>
    {
        var g = Elements<T>(featureGradient);
        var x = Elements<T>(extended);
        var dx = Elements<T>(result);
        int tilde = d + 1, size = tilde * rows;
        Span<T> asFirst = stackalloc T[tilde];       // Σ_d dφ_(m,d)·x̃_(m+d)
        Span<T> asSecond = stackalloc T[2 * tilde];  // Σ_d dφ_(i,d)·x̃_i at i + d, folded mod D̃ below
        for (long t = start; t < start + count; t++)
        {
            var xt = x.Slice((int)(t * 2 * tilde), 2 * tilde);
            var gt = g.Slice((int)(t * size), size);
            asFirst.Clear();
            asSecond.Clear();
            for (int shift = 0; shift < rows; shift++)
            {
                var gd = gt.Slice(shift * tilde, tilde);
                MultiplyAdd(gd, xt.Slice(shift, tilde), asFirst);
                MultiplyAdd(gd, xt.Slice(0, tilde), asSecond.Slice(shift, tilde));
            }
            var dxt = dx.Slice((int)(t * d), d);
            for (int m = 0; m < d; m++) dxt[m] = asFirst[m] + asSecond[m] + asSecond[m + tilde];
        }
    }

    // The arithmetic is written out as System.Numerics vector loops rather than calls to TensorPrimitives
    // (System.Numerics.Tensors). The spans are short (Rows = 17 and D̃ = 33 entries at D = 32), where its fixed cost per
    // call was most of the time: the chain rule on 820 tokens at D = 32, one thread, took 1.04 ms through it and
    // 0.33–0.42 ms written out (1.8–2.7 ms as libtorch broadcast passes; 1.1–1.8 ms for the GEMM that produces its input).
    // And these loops are compiled fully optimized on first use, where a tiered library call left the first ten forward
    // calls up to twice as slow.

    /// <summary>y = s·x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Scale<T>(ReadOnlySpan<T> x, T s, Span<T> y) where T : unmanaged, INumber<T>
    {
        ref T xs = ref MemoryMarshal.GetReference(x);
        ref T ys = ref MemoryMarshal.GetReference(y);
        int i = 0;
        var sv = new Vector<T>(s);
        for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
            Vector.StoreUnsafe(Vector.LoadUnsafe(ref xs, (nuint)i) * sv, ref ys, (nuint)i);
        for (; i < x.Length; i++) y[i] = x[i] * s;
    }

    /// <summary>a · b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static T Dot<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b) where T : unmanaged, INumber<T>
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
    static void MultiplyAdd<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> acc) where T : unmanaged, INumber<T>
    {
        ref T ar = ref MemoryMarshal.GetReference(a);
        ref T br = ref MemoryMarshal.GetReference(b);
        ref T cr = ref MemoryMarshal.GetReference(acc);
        int i = 0;
        for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count)
            Vector.StoreUnsafe(Vector.LoadUnsafe(ref cr, (nuint)i) + Vector.LoadUnsafe(ref ar, (nuint)i) * Vector.LoadUnsafe(ref br, (nuint)i), ref cr, (nuint)i);
        for (; i < a.Length; i++) acc[i] += a[i] * b[i];
    }

    /// <summary>A contiguous CPU tensor's elements, without a copy (the caller keeps the tensor alive).</summary>
    static Span<T> Elements<T>(Tensor x) where T : unmanaged => MemoryMarshal.Cast<byte, T>(x.bytes);

    /// <summary>Tokens [0, n) in one contiguous range per intra-op thread (libtorch's count), run in parallel.</summary>
    static void ForTokenRanges(long tokens, Action<long, long> body)
    {
        // Below a few hundred tokens a second thread costs more than it saves.
        int parts = (int)Math.Clamp(tokens / 256, 1, torch.get_num_threads());
        long per = (tokens + parts - 1) / parts;
        if (parts == 1) { body(0, tokens); return; }
        Parallel.For(0, parts, p =>
        {
            long start = p * per;
            if (start < tokens) body(start, Math.Min(per, tokens - start));
        });
    }
}
