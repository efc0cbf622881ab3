using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Verification;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.Reference;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>The normalization's per-token loops against the tensor-op forms they replace, and the whole node against the dense twin.</summary>
public class MaxNormLoopsTests
{
    /// <summary>
    /// 60 random cases: D from 1 to 70, 1 to 3 leading dims, 1 to 1200 tokens (the loops split over threads in ParallelSplitTests), inputs scaled by
    /// 1e-3 to 1e3 around an offset (what centring removes), and every other case a non-contiguous view.
    /// </summary>
    [Theory]
    [MemberData(nameof(PackedFeatureLoopsTests.Dtypes), MemberType = typeof(PackedFeatureLoopsTests))]
    public void Loops_equal_the_tensor_op_forms(ScalarType dtype)
    {
        var random = new Random(11);
        var generator = new Generator(13);
        double tight = dtype == ScalarType.Float64 ? 1e-13 : 1e-5;
        for (int trial = 0; trial < 60; trial++)
        {
            using var scope = NewDisposeScope();
            int d = trial < 3 ? 1 : random.Next(1, 71);
            long n = trial % 7 == 0 ? 1 : random.Next(1, 1201);
            long[] lead = Enumerable.Range(0, random.Next(1, 4)).Select(_ => (long)random.Next(1, 4)).ToArray();
            double scale = Math.Pow(10, random.Next(-3, 4));
            bool centre = trial % 2 == 0;
            Tensor Input() => trial % 2 == 1
                ? randn(lead.Append(d).Append(n).ToArray(), dtype: dtype, generator: generator).transpose(-1, -2)  // not contiguous
                : randn(lead.Append(n).Append(d).ToArray(), dtype: dtype, generator: generator);
            var x = (Input() + 3) * scale;
            var (dy, y) = (Input(), Input());
            var alpha = randn(lead.Append(n).ToArray(), dtype: dtype, generator: generator);
            var beta = randn(lead.Append(n).ToArray(), dtype: dtype, generator: generator);
            string name = $"D={d} n={n} lead=[{string.Join(",", lead)}] scale={scale:g1} centre={centre} {dtype}";

            var (c, norms) = MaxNormLoops.CentreAndNorm(x, centre);
            var (cReference, normsReference) = MaxNormFunction.CentreAndNorm(x, centre);
            // Centring cancels the offset 3·scale: what remains carries that much absolute roundoff.
            double cancelled = 3 * scale * (dtype == ScalarType.Float64 ? 1e-15 : 1e-6) * 8;
            ErrorReport.Of($"centred ({name})", c, cReference).Require(tight, cancelled);
            ErrorReport.Of($"norms ({name})", norms, normsReference).Require(tight, cancelled * Math.Sqrt(d));
            ErrorReport.Of($"token dots ({name})", MaxNormLoops.TokenDots(dy, y), (dy * y).sum(-1)).Require(tight);
            ErrorReport.Of($"centred combination ({name})", MaxNormLoops.CentredCombination(dy, y, alpha, beta, centre),
                MaxNormFunction.CentredCombination(dy, y, alpha, beta, centre)).Require(tight, tight * 10);
        }
    }

    /// <summary>
    /// The node (loops inside) against autograd through the dense twin in float64, over 24 random cases per dtype: value
    /// and input gradient, both max-norm normalizations, causal and not.
    /// </summary>
    [Theory]
    [MemberData(nameof(PackedFeatureLoopsTests.Dtypes), MemberType = typeof(PackedFeatureLoopsTests))]
    public void Normalizer_with_loops_matches_the_dense_twin(ScalarType dtype)
    {
        var random = new Random(17);
        var generator = new Generator(19);
        for (int trial = 0; trial < 24; trial++)
        {
            using var scope = NewDisposeScope();
            int d = trial < 2 ? 1 : random.Next(1, 65);
            long n = trial % 5 == 0 ? 1 : random.Next(1, 900);
            var normalization = trial % 2 == 0 ? FastmaxNormalization.MeanCentered : FastmaxNormalization.ZeroCentered;
            bool causal = trial % 4 >= 2;
            double scale = Math.Pow(10, random.Next(-2, 3));
            var x64 = randn(new long[] { 2, 2, n, d }, dtype: ScalarType.Float64, generator: generator) * scale;
            var weights64 = randn(new long[] { 2, 2, n, d }, dtype: ScalarType.Float64, generator: generator);
            string name = $"{normalization} causal={causal} N={n} D={d} scale={scale:g1} {dtype}";

            (Tensor Value, Tensor Gradient) Run(Func<Tensor, Tensor> normalize, ScalarType type)
            {
                var input = x64.to(type).detach().requires_grad_();
                var value = normalize(input);
                var loss = (value * weights64.to(type)).sum();
                return (value.detach(), autograd.grad(new[] { loss }, new[] { input })[0]);
            }
            var (expected, expectedGradient) = Run(t => FastmaxDense.Normalize(t, normalization, causal), ScalarType.Float64);
            var (actual, actualGradient) = Run(t => FastmaxNormalizer.Normalize(t, normalization, causal), dtype);
            var (tolerance, roundoff) = dtype == ScalarType.Float64 ? (1e-12, 1e-14) : (1e-4, 1e-5);
            ErrorReport.Of($"value ({name})", actual, expected).Require(tolerance, roundoff);
            ErrorReport.Of($"gradient ({name})", actualGradient, expectedGradient)
                .Require(tolerance, roundoff * weights64.abs().max().item<double>() / scale);
        }
    }

    [Fact]
    public void Tensors_that_need_autograd_take_the_tensor_op_forms()
    {
        using var x = randn(1, 1, 4, 3, dtype: ScalarType.Float64).requires_grad_();
        Assert.False(TokenLoops.Supports(x));
        using (no_grad()) Assert.True(TokenLoops.Supports(x));
        using var integers = ones(1, 1, 4, 3, dtype: ScalarType.Int32);
        Assert.False(TokenLoops.Supports(integers));
    }
}
