using CsCheck;
using FastNotebooks.Attention.Fastmax;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.Reference;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax;

/// <summary>One randomly drawn kernel configuration: shapes, options, input scale and the seed of its tensors.</summary>
public sealed record KernelCase(int B, int H, int Nq, int Nk, int D, int Dv, double Scale, FastmaxOptions Options, long Seed)
{
    public (Tensor Q, Tensor K, Tensor V) Inputs(ScalarType dtype, bool requiresGrad = false)
    {
        var generator = new Generator((ulong)Seed);
        var q = (randn(new long[] { B, H, Nq, D }, dtype: ScalarType.Float64, generator: generator) * Scale).to(dtype);
        var k = (randn(new long[] { B, H, Nk, D }, dtype: ScalarType.Float64, generator: generator) * Scale).to(dtype);
        var v = randn(new long[] { B, H, Nk, Dv }, dtype: ScalarType.Float64, generator: generator).to(dtype);
        return (q.requires_grad_(requiresGrad), k.requires_grad_(requiresGrad), v.requires_grad_(requiresGrad));
    }

    /// <summary>
    /// True where some denominator Σ_j f(s_ij) is below 1e-6 of its number of terms (1e-3 for float32 inputs): at
    /// p = 1 with s = −1 it is exactly zero (0/0), and there no algorithm agrees with another. Near it, f = 1 + s
    /// cancels: s's rounding error (~6e-8 in float32) grows by 1/f, so in float32 a denominator of 1e-4 alone costs
    /// the 1e-4 tolerance. Such cases carry no information about the kernels.
    /// </summary>
    public bool IllConditioned(Tensor q64, Tensor k64, ScalarType inputs = ScalarType.Float64) =>
        SmallestDenominator(q64, k64) < (inputs == ScalarType.Float32 ? 1e-3 : 1e-6) * Nk;

    /// <summary>
    /// Absolute floor for comparing dq and dk in float64. Some are zero in exact arithmetic (Nk = 1: o = v whatever q is);
    /// there only roundoff remains, amplified by the normalization's 1/scale and, since Ĝ′·v′ = Ĝ·(v − o) with Ĝ = dO/g,
    /// by 1/g as the smallest denominator g nears zero (f = a0 + a1·s can cancel at T &lt; 1); a wrong gradient is of the
    /// order of 1/scale itself.
    /// </summary>
    public double ZeroGradientFloor(Tensor q, Tensor k) => 1e-12 * Math.Max(1, 1 / Scale) * Math.Max(1, Nk / SmallestDenominator(q, k));

    /// <summary>The smallest denominator Σ_j f(s_ij) over all queries, in float64.</summary>
    public double SmallestDenominator(Tensor q, Tensor k)
    {
        using var f = FastmaxDense.Kernel(q.to(ScalarType.Float64), k.to(ScalarType.Float64), Options);
        using var rows = f.sum(-1);
        return rows.min().item<double>();
    }

    /// <summary>
    /// Runs <paramref name="check"/> on <paramref name="iterations"/> random cases with inputs in <paramref name="dtype"/>
    /// (each in its own dispose scope), skipping ill-conditioned ones, and requires that at least 80 % were checked.
    /// </summary>
    public static void CheckWellConditioned(int iterations, ScalarType dtype, Action<KernelCase, Tensor, Tensor, Tensor> check)
    {
        int compared = 0;
        Any.Sample(c =>
        {
            using var scope = NewDisposeScope();
            var (q, k, v) = c.Inputs(dtype);
            if (c.IllConditioned(q.to(ScalarType.Float64), k.to(ScalarType.Float64), dtype)) return;
            check(c, q, k, v);
            compared++;
        }, iter: iterations, threads: 1);
        Assert.True(compared >= iterations * 0.8, $"only {compared} of {iterations} cases were well conditioned");
    }

    public override string ToString() =>
        $"B={B} H={H} Nq={Nq} Nk={Nk} D={D} Dv={Dv} scale={Scale:G} p={Options.Order} {Options.Normalization} " +
        $"causal={Options.Causal} T={Options.Temperature} chunk={Options.ChunkSize} backend={Options.Backend} a=[{string.Join(", ", Options.ResolvedCoefficients())}] seed={Seed}";

    static readonly Gen<FastmaxNormalization> Normalizations = Gen.Enum<FastmaxNormalization>();

    /// <summary>
    /// Shapes from 1 up (N = 1, D = 1 included), Nq ≠ Nk, every order, normalization and backend, scales 1e-3 … 1e3.
    /// Coefficients are Taylor's or random with a_0 above the sum of the others, so f stays positive wherever
    /// |s| ≤ 1. Without normalization the inputs stay at scale ≤ 1: odd orders can divide by a denominator near zero
    /// (no method is accurate there), and at large scales the factorized sums cancel — the terms of (q·k)² via
    /// features are ~|q|²|k|² while s² may be far smaller — so float32 loses digits in proportion (README.md beside the
    /// kernels, "Normalization"). With normalization every scale is tested.
    /// </summary>
    public static readonly Gen<KernelCase> Any =
        from order in Gen.Int[1, 3]
        from normalization in Normalizations
        from causal in Gen.Bool
        from nq in Gen.OneOf(Gen.Const(1), Gen.Int[1, 40])
        from extraKeys in Gen.OneOf(Gen.Const(0), Gen.Int[0, 9])
        from d in Gen.OneOf(Gen.Const(1), Gen.Int[1, 6])
        from dv in Gen.Int[1, 5]
        from bh in Gen.Int[1, 2].Array[2]
        from scaleExponent in Gen.OneOf(-3, 0, 3)
        from chunk in Gen.OneOf(Gen.Const(1), Gen.Int[2, 17], Gen.Const(128))
        from taylor in Gen.Bool
        from randomCoefficients in Gen.Double[0.05, 1.0].Array[3]
        from temperature in Gen.OneOf(1.0, 0.5, 2.0)
        from seed in Gen.Long[0, 1_000_000]
        from backend in Gen.Enum<FastmaxBackend>()
        let scale = normalization != FastmaxNormalization.None ? Math.Pow(10, scaleExponent)
            : order != 2 ? Math.Min(Math.Pow(10, scaleExponent), 0.1 / Math.Sqrt(d))
            : Math.Min(Math.Pow(10, scaleExponent), 1.0)
        select new KernelCase(bh[0], bh[1], nq, nq + extraKeys, d, dv, scale, new FastmaxOptions
        {
            Order = order,
            Normalization = normalization,
            Causal = causal,
            ChunkSize = chunk,
            Temperature = normalization == FastmaxNormalization.None ? 1.0 : temperature,
            Coefficients = taylor ? null : DominantConstant(randomCoefficients.Take(order).ToArray()),
            Backend = backend,
        }, seed);

    static double[] DominantConstant(double[] higher) => higher.Prepend(higher.Sum() + 0.1).ToArray();
}
