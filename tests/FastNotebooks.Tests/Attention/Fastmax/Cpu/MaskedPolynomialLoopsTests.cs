using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Verification;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.Reference;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>The causal kernel's fused in-chunk weights against the tensor-op form they replace.</summary>
public class MaskedPolynomialLoopsTests
{
    public static TheoryData<ScalarType> Dtypes() => new() { ScalarType.Float64, ScalarType.Float32 };

    /// <summary>
    /// 40 random cases: blocks of c = 1 to 140 (below, at and across vector widths), 1 to 3 leading dims, orders 1 and 2 with
    /// random coefficients, scores scaled by 1e-3 to 1e2: tril f(s) alone, and tril f(s) with tril f′(s) ⊙ u.
    /// </summary>
    [Theory]
    [MemberData(nameof(Dtypes))]
    public void Fused_weights_equal_the_tensor_op_form(ScalarType dtype)
    {
        var random = new Random(4);
        var generator = new Generator(6);
        for (int trial = 0; trial < 40; trial++)
        {
            using var scope = NewDisposeScope();
            int c = trial < 2 ? 1 : random.Next(1, 141);
            long[] shape = Enumerable.Range(0, random.Next(1, 4)).Select(_ => (long)random.Next(1, 4)).Append(c).Append(c).ToArray();
            var a = Enumerable.Range(0, random.Next(2, 4)).Select(_ => random.NextDouble() * 2 - 0.5).ToArray();
            var b = TaylorFeatures.Derivative(a);
            double scale = Math.Pow(10, random.Next(-3, 3));
            var s = randn(shape, dtype: dtype, generator: generator) * scale;
            var u = randn(shape, dtype: dtype, generator: generator);
            string name = $"shape=[{string.Join(",", shape)}] p={a.Length - 1} scale={scale:g1} {dtype}";
            double tolerance = dtype == ScalarType.Float64 ? 1e-14 : 1e-6;
            Assert.True(MaskedPolynomialLoops.Supports(s, u), name);

            var f = s.clone();
            MaskedPolynomialLoops.Polynomial(f, a);
            ErrorReport.Of($"f ({name})", f, TaylorFeatures.Polynomial(s, a).tril_()).Require(tolerance);

            var (f2, ds) = (s.clone(), u.clone());
            MaskedPolynomialLoops.PolynomialAndDerivative(f2, ds, a, b);
            ErrorReport.Of($"f with derivative ({name})", f2, TaylorFeatures.Polynomial(s, a).tril_()).Require(tolerance);
            ErrorReport.Of($"ds ({name})", ds, TaylorFeatures.Polynomial(s, b).tril_().mul_(u)).Require(tolerance);
        }
    }
}
