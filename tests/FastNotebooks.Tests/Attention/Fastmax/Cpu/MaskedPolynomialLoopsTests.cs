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

            // The row sums written beside the rows, into one column of a wider tensor (as the causal forward's [numerator, g] rows).
            int width = random.Next(1, 6), column = random.Next(0, width);
            var wide = randn(shape[..^1].Append(width).ToArray(), dtype: dtype, generator: generator);
            var before = wide.clone();
            var f1 = s.clone();
            MaskedPolynomialLoops.Polynomial(f1, a, wide.select(-1, column));
            Assert.True(Bits.Same(f1, f), $"the rows changed with their sums ({name})");
            var expectedSums = TaylorFeatures.Polynomial(s.to_type(ScalarType.Float64), a).tril_().sum(-1);
            ErrorReport.Of($"row sums ({name})", wide.select(-1, column).to_type(ScalarType.Float64), expectedSums).Require(dtype == ScalarType.Float64 ? 1e-13 : 1e-5);
            var others = ones(width, dtype: ScalarType.Bool);
            others[column] = false;
            Assert.True(Bits.Same(wide.index_select(-1, others.nonzero().flatten()), before.index_select(-1, others.nonzero().flatten())), $"other columns changed ({name})");

            var (f2, ds) = (s.clone(), u.clone());
            MaskedPolynomialLoops.PolynomialAndDerivative(f2, ds, a, b);
            ErrorReport.Of($"f with derivative ({name})", f2, TaylorFeatures.Polynomial(s, a).tril_()).Require(tolerance);
            ErrorReport.Of($"ds ({name})", ds, TaylorFeatures.Polynomial(s, b).tril_().mul_(u)).Require(tolerance);
        }
    }

    /// <summary>Row sums go only where their rows lie a constant stride apart, of the scores' dtype and leading shape; others are refused by name.</summary>
    [Fact]
    public void Row_sums_of_another_layout_are_refused()
    {
        using var scope = NewDisposeScope();
        var s = randn(new long[] { 2, 3, 8, 8 });
        var a = new[] { 1.0, 1.0, 0.5 };
        Assert.True(MaskedPolynomialLoops.TakesRowSums(s, zeros(2, 3, 8, 5).select(-1, 4)));
        foreach (var bad in new[] { zeros(2, 3, 9, 5).narrow(2, 0, 8).select(-1, 0), zeros(2, 3, 8, dtype: ScalarType.Float64), zeros(3, 2, 8), zeros(2, 3, 8, 2).transpose(0, 1).select(-1, 0) })
        {
            Assert.False(MaskedPolynomialLoops.TakesRowSums(s, bad));
            Assert.Equal("rowSums", Assert.Throws<ArgumentException>(() => MaskedPolynomialLoops.Polynomial(s.clone(), a, bad)).ParamName);
        }
    }
}
