using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.Reference;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// The causal kernel's in-chunk weights as one pass over each chunk's c × c block of scores, in place: f(s) by Horner's rule on
/// and below the diagonal, zeros above it — and, for the backward, f′(s)·(Ĝ′·v′) beside it. The tensor-op form
/// (<see cref="TaylorFeatures.Polynomial"/>, <c>tril_</c>, <c>mul_</c>; its reference) reads and writes every block five to nine
/// times.
/// </summary>
internal static class MaskedPolynomialLoops
{
    /// <summary>True for contiguous CPU float32/float64 blocks [..., c, c] that need no autograd graph.</summary>
    public static bool Supports(params Tensor[] blocks) =>
        TokenLoops.Supports(blocks) && blocks.All(b => b.is_contiguous() && b.dtype == blocks[0].dtype && b.Shape().SequenceEqual(blocks[0].Shape()))
        && blocks[0].dim() >= 2 && blocks[0].Shape()[^1] == blocks[0].Shape()[^2];

    /// <summary>s ← f(s) on and below each block's diagonal, 0 above it (f's coefficients a_0..a_p).</summary>
    public static void Polynomial(Tensor scores, double[] a) => Run(scores, null, a, null);

    /// <summary>s ← tril(f(s)) and upstream ← tril(f′(s)) ⊙ upstream, for f′'s coefficients b.</summary>
    public static void PolynomialAndDerivative(Tensor scores, Tensor upstream, double[] a, double[] b) => Run(scores, upstream, a, b);

    static void Run(Tensor scores, Tensor? upstream, double[] a, double[]? b)
    {
        int c = (int)scores.Shape()[^1];
        long rows = scores.numel() / Math.Max(1, c);
        TokenLoops.ForTokenRanges(rows, 4L * c, (start, count) =>
        {
            if (scores.dtype == ScalarType.Float32) Rows<float>(scores, upstream, a, b, c, start, count);
            else Rows<double>(scores, upstream, a, b, c, start, count);
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Rows<T>(Tensor scores, Tensor? upstream, double[] a, double[]? b, int c, long start, long count)
        where T : unmanaged, INumber<T>
    {
        var s = TokenLoops.Elements<T>(scores);
        var g = upstream is null ? default : TokenLoops.Elements<T>(upstream);
        Span<T> fa = stackalloc T[a.Length];
        for (int l = 0; l < a.Length; l++) fa[l] = T.CreateChecked(a[l]);
        Span<T> fb = stackalloc T[b?.Length ?? 0];
        for (int l = 0; l < fb.Length; l++) fb[l] = T.CreateChecked(b![l]);
        for (long row = start; row < start + count; row++)
        {
            int visible = (int)(row % c) + 1;   // columns 0..i of row i of its block
            var sr = s.Slice((int)(row * c), c);
            if (upstream is not null)
            {
                var gr = g.Slice((int)(row * c), c);
                Horner<T>(sr.Slice(0, visible), fb, gr.Slice(0, visible), multiply: true);
                gr.Slice(visible).Clear();
            }
            Horner<T>(sr.Slice(0, visible), fa, sr.Slice(0, visible), multiply: false);
            sr.Slice(visible).Clear();
        }
    }

    /// <summary>y = Σ_l k_l x^l (or y ⊙= it when <paramref name="multiply"/>), Horner's rule over vectors; y may alias x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Horner<T>(Span<T> x, ReadOnlySpan<T> k, Span<T> y, bool multiply) where T : unmanaged, INumber<T>
    {
        ref T xs = ref MemoryMarshal.GetReference(x);
        ref T ys = ref MemoryMarshal.GetReference(y);
        int i = 0, top = k.Length - 1;
        for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
        {
            var xv = Vector.LoadUnsafe(ref xs, (nuint)i);
            var acc = new Vector<T>(k[top]);
            for (int l = top - 1; l >= 0; l--) acc = acc * xv + new Vector<T>(k[l]);
            if (multiply) acc *= Vector.LoadUnsafe(ref ys, (nuint)i);
            Vector.StoreUnsafe(acc, ref ys, (nuint)i);
        }
        for (; i < x.Length; i++)
        {
            T acc = k[top];
            for (int l = top - 1; l >= 0; l--) acc = acc * x[i] + k[l];
            y[i] = multiply ? acc * y[i] : acc;
        }
    }
}
