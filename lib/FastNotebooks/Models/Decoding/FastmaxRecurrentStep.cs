using FastNotebooks.Attention.Fastmax.Reference;
using System.Numerics;
using System.Runtime.InteropServices;
using FastNotebooks.Attention.Fastmax;
using static TorchSharp.torch;

namespace FastNotebooks.Models.Decoding;

/// <summary>
/// One decoding step of <see cref="FastmaxRecurrentState"/> written out per head for CPU tensors (float32, float64, p ≤ 2):
/// normalize k and q with the running maxima, build φ_k(k̂) and the weighted φ_q(q̂) in <see cref="TaylorFeatures"/>' order
/// ([1, x, x_i·x_j for i ≤ j], the query side carrying a_l and the multinomial weight), then one pass over the state's rows:
/// S_f += φ_k,f·[v, 1] and [numerator, g] += φ_q,f·S_f. The tensor-op step in <see cref="FastmaxRecurrentState.Step"/> is its
/// reference (and the path for p = 3, other devices and dtypes): a token through libtorch is some twenty small operations,
/// whose fixed cost was most of a step at D = 32.
/// </summary>
internal static class FastmaxRecurrentStep
{
    /// <summary>
    /// True where this loop takes the step: p ≤ 2, CPU tensors of one dtype, float32 or float64, the state and the scales
    /// contiguous (the token's q, k, v are made contiguous by the caller).
    /// </summary>
    public static bool Applies(int order, Tensor state, Tensor queryScale, Tensor keyScale, params Tensor[] token) =>
        order <= 2 && state.device_type == TorchSharp.DeviceType.CPU && state.dtype is ScalarType.Float32 or ScalarType.Float64
        && new[] { state, queryScale, keyScale }.All(t => t.is_contiguous() && t.dtype == state.dtype)
        && token.All(t => t.device_type == TorchSharp.DeviceType.CPU && t.dtype == state.dtype);

    /// <summary>
    /// q, k [B, H, 1, D], v [B, H, 1, Dv] → output [B, H, 1, Dv]; state [B, H, F, Dv + 1] and the scales [B, H, 1, 1] updated in place.
    /// </summary>
    public static void Run(Tensor q, Tensor k, Tensor v, Tensor state, Tensor queryScale, Tensor keyScale, Tensor output,
        FastmaxNormalization normalization, IReadOnlyList<double> coefficients, double temperature)
    {
        if (state.dtype == ScalarType.Float32) Run<float>(q, k, v, state, queryScale, keyScale, output, normalization, coefficients, temperature);
        else Run<double>(q, k, v, state, queryScale, keyScale, output, normalization, coefficients, temperature);
    }

    static Span<T> Of<T>(Tensor t) where T : unmanaged => MemoryMarshal.Cast<byte, T>(t.bytes);

    static void Run<T>(Tensor qt, Tensor kt, Tensor vt, Tensor st, Tensor qst, Tensor kst, Tensor ot,
        FastmaxNormalization normalization, IReadOnlyList<double> a, double temperature) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int heads = checked((int)(qt.size(0) * qt.size(1))), d = (int)qt.size(3), dv = (int)vt.size(3), width = dv + 1;
        int order = a.Count - 1, features = (int)TaylorFeatures.Size(d, order);
        Span<T> q = Of<T>(qt), k = Of<T>(kt), v = Of<T>(vt), s = Of<T>(st), qs = Of<T>(qst), ks = Of<T>(kst), o = Of<T>(ot);
        var qHat = new T[d];
        var kHat = new T[d];
        var phiK = new T[features];
        var phiQ = new T[features];
        var vOne = new T[width];
        var sum = new T[width];
        for (int h = 0; h < heads; h++)
        {
            Normalize(k.Slice(h * d, d), ref ks[h], normalization, kHat, 1);
            Normalize(q.Slice(h * d, d), ref qs[h], normalization, qHat, temperature);
            Features(kHat, null, phiK);
            Features(qHat, a, phiQ);
            v.Slice(h * dv, dv).CopyTo(vOne);
            vOne[dv] = T.One;
            Array.Clear(sum);
            var rows = s.Slice(h * features * width, features * width);
            for (int f = 0; f < features; f++)
            {
                var row = rows.Slice(f * width, width);
                AddScaled(row, vOne, phiK[f]);                  // S_f += φ_k,f·[v, 1]
                AddScaled(sum, row, phiQ[f]);                   // [numerator, g] += φ_q,f·S_f
            }
            var outHead = o.Slice(h * dv, dv);
            for (int c = 0; c < dv; c++) outHead[c] = sum[c] / sum[dv];
        }
    }

    /// <summary>The causal normalization of one token, continuing the running maximum <paramref name="scale"/> (FastmaxRecurrentState.Normalize).</summary>
    static void Normalize<T>(ReadOnlySpan<T> x, ref T scale, FastmaxNormalization normalization, T[] result, double temperature) where T : unmanaged, IFloatingPointIeee754<T>
    {
        x.CopyTo(result);
        T divisor = T.One;
        if (normalization != FastmaxNormalization.None)
        {
            if (normalization == FastmaxNormalization.MeanCentered)
            {
                T mean = T.Zero;
                foreach (var value in result) mean += value;
                mean /= T.CreateChecked(result.Length);
                for (int i = 0; i < result.Length; i++) result[i] -= mean;
            }
            T squares = T.Zero;
            foreach (var value in result) squares += value * value;
            T measure = normalization == FastmaxNormalization.SquaredNorm ? squares : T.Sqrt(squares);
            scale = T.Max(scale, measure);
            T floor = T.CreateChecked(normalization == FastmaxNormalization.SquaredNorm ? FastmaxNormalizer.SquaredNormFloor : FastmaxNormalizer.NormFloor);
            divisor = T.Max(scale, floor);
        }
        divisor *= T.CreateChecked(temperature);
        for (int i = 0; i < result.Length; i++) result[i] /= divisor;
    }

    /// <summary>φ(x) = [c_0, c_1·x, c_2·w_ij·x_i·x_j (i ≤ j)] with the weights c = a (query) or 1 (key), w = 1 on the diagonal, 2 off it.</summary>
    static void Features<T>(T[] x, IReadOnlyList<double>? a, T[] phi) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T C(int l) => a is null ? T.One : T.CreateChecked(a[l]);
        int d = x.Length, f = 0;
        phi[f++] = C(0);
        T c1 = C(1);
        for (int i = 0; i < d; i++) phi[f++] = c1 * x[i];
        if (phi.Length == f) return;
        T c2 = C(2), twice = c2 + c2;
        for (int i = 0; i < d; i++)
        {
            phi[f++] = c2 * x[i] * x[i];
            T xi = (a is null ? T.One : twice) * x[i];
            for (int j = i + 1; j < d; j++) phi[f++] = xi * x[j];
        }
    }

    /// <summary>acc += s·x.</summary>
    static void AddScaled<T>(Span<T> acc, ReadOnlySpan<T> x, T s) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var accs = MemoryMarshal.Cast<T, Vector<T>>(acc);
            var xs = MemoryMarshal.Cast<T, Vector<T>>(x);
            for (; i < Math.Min(accs.Length, xs.Length); i++) accs[i] += xs[i] * s;
            i *= Vector<T>.Count;
        }
        for (; i < acc.Length; i++) acc[i] += x[i] * s;
    }
}
