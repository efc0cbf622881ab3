using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
}
