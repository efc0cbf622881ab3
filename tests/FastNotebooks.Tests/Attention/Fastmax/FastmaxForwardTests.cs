using CsCheck;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Verification;
using FastNotebooks.Attention.Fastmax.Reference;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax;

/// <summary>The factorized and chunked kernels against the dense N×N reference.</summary>
public class FastmaxForwardTests
{
    const int Iterations = 300;

    [Theory]
    [InlineData(ScalarType.Float64, 1e-10)]
    [InlineData(ScalarType.Float32, 1e-4)]
    public void Factorized_matches_dense_over_random_cases(ScalarType dtype, double tolerance)
    {
        KernelCase.CheckWellConditioned(Iterations, dtype, (c, q, k, v) =>
        {
            var fast = FastmaxFunctional.Attention(q, k, v, c.Options);
            var dense = FastmaxDense.Attention(q.to(ScalarType.Float64), k.to(ScalarType.Float64), v.to(ScalarType.Float64), c.Options);
            ErrorReport.Of($"output ({c})", fast, dense).Require(tolerance);
        });
    }

    /// <summary>
    /// One causal query sees every key (KV offset: query i sees j ≤ Nk − Nq + i): with one key it returns that key's
    /// value; with extra keys it equals the dense unmasked reference. (Without normalization: the causal max-norm
    /// normalizations scale each key by the running maximum up to it, which differs from the unmasked global maximum.)
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_single_causal_query_sees_every_key(bool extraKeys)
    {
        int keys = extraKeys ? 3 : 1;
        var options = new FastmaxOptions { Causal = true, Normalization = extraKeys ? FastmaxNormalization.None : FastmaxNormalization.MeanCentered };
        using var q = 0.4 * randn(1, 1, 1, 4, dtype: ScalarType.Float64);
        using var k = 0.4 * randn(1, 1, keys, 4, dtype: ScalarType.Float64);
        using var v = randn(1, 1, keys, 3, dtype: ScalarType.Float64);
        using var o = FastmaxFunctional.Attention(q, k, v, options);
        using var expected = extraKeys ? FastmaxDense.Attention(q, k, v, options with { Causal = false }) : v.clone();
        ErrorReport.Of($"one query, {keys} key(s)", o, expected).Require(1e-14);
    }

    [Fact]
    public void First_causal_query_sees_only_the_first_key()
    {
        var options = new FastmaxOptions { Causal = true, ChunkSize = 3 };
        using var q = randn(1, 2, 7, 5, dtype: ScalarType.Float64);
        using var k = randn(1, 2, 7, 5, dtype: ScalarType.Float64);
        using var v = randn(1, 2, 7, 2, dtype: ScalarType.Float64);
        using var o = FastmaxFunctional.Attention(q, k, v, options);
        ErrorReport.Of("first query", o.narrow(2, 0, 1), v.narrow(2, 0, 1)).Require(1e-14);
    }

    [Fact]
    public void Normalized_scores_stay_within_one()
    {
        foreach (var normalization in new[] { FastmaxNormalization.MeanCentered, FastmaxNormalization.ZeroCentered })
        foreach (var causal in new[] { false, true })
        {
            using var q = randn(2, 3, 50, 8, dtype: ScalarType.Float64) * 1e3;
            using var k = randn(2, 3, 50, 8, dtype: ScalarType.Float64) * 1e-3 + 5;
            using var s = FastmaxDense.Normalize(q, normalization, causal).matmul(FastmaxDense.Normalize(k, normalization, causal).transpose(-1, -2));
            Assert.True(s.abs().max().item<double>() <= 1 + 1e-12, $"{normalization}: max |s| = {s.abs().max().item<double>()}");
        }
    }

    [Fact]
    public void Squared_norm_variant_breaks_the_unit_bound_on_small_inputs()
    {
        using var q = randn(1, 1, 50, 8, dtype: ScalarType.Float64) * 0.1;
        using var s = FastmaxDense.Normalize(q, FastmaxNormalization.SquaredNorm).matmul(FastmaxDense.Normalize(q, FastmaxNormalization.SquaredNorm).transpose(-1, -2));
        Assert.True(s.abs().max().item<double>() > 1, $"max |s| = {s.abs().max().item<double>()}");
    }

    [Theory]
    [InlineData(FastmaxNormalization.MeanCentered, false)]
    [InlineData(FastmaxNormalization.ZeroCentered, false)]
    [InlineData(FastmaxNormalization.SquaredNorm, false)]
    [InlineData(FastmaxNormalization.None, false)]
    [InlineData(FastmaxNormalization.MeanCentered, true)]
    [InlineData(FastmaxNormalization.ZeroCentered, true)]
    [InlineData(FastmaxNormalization.SquaredNorm, true)]
    public void Library_normalizer_matches_the_reference_twin(FastmaxNormalization normalization, bool causal)
    {
        using var x = randn(2, 3, 11, 5, dtype: ScalarType.Float64) * 3 + 1;
        ErrorReport.Of($"{normalization} causal={causal}", FastmaxNormalizer.Normalize(x, normalization, causal), FastmaxDense.Normalize(x, normalization, causal)).Require(1e-14);
    }

    public static TheoryData<FastmaxNormalization, bool, int, int, double> NormalizerGradientCases()
    {
        var data = new TheoryData<FastmaxNormalization, bool, int, int, double>();
        foreach (var normalization in new[] { FastmaxNormalization.MeanCentered, FastmaxNormalization.ZeroCentered })
            foreach (bool causal in new[] { false, true })
                foreach (var (n, d) in new[] { (1, 1), (1, 4), (7, 1), (13, 5), (40, 32) })
                    foreach (double scale in new[] { 1e-6, 1.0, 1e4 })
                        data.Add(normalization, causal, n, d, scale);
        return data;
    }

    /// <summary>The max-norm's written-out backward (<see cref="MaxNormFunction"/>) against autograd through the plain twin.</summary>
    [Theory]
    [MemberData(nameof(NormalizerGradientCases))]
    public void Library_normalizer_gradient_matches_autograd_of_the_twin(FastmaxNormalization normalization, bool causal, int n, int d, double scale)
    {
        var generator = new Generator((ulong)(n * 100 + d));
        using var x = randn(new long[] { 2, 3, n, d }, dtype: ScalarType.Float64, generator: generator) * scale;
        using var weights = randn(new long[] { 2, 3, n, d }, dtype: ScalarType.Float64, generator: generator);
        Tensor Gradient(Func<Tensor, Tensor> normalize)
        {
            var input = x.detach().requires_grad_();
            using var loss = (normalize(input) * weights).sum();
            return autograd.grad(new[] { loss }, new[] { input })[0];
        }
        using var expected = Gradient(t => FastmaxDense.Normalize(t, normalization, causal));
        using var actual = Gradient(t => FastmaxNormalizer.Normalize(t, normalization, causal));
        // The gradient's natural size is |w|/scale; where it is zero in exact arithmetic (one token with D = 1 has
        // y = sign(x)) only roundoff of that size remains.
        double roundoff = 1e-14 * weights.abs().max().item<double>() / scale;
        ErrorReport.Of($"{normalization} causal={causal} N={n} D={d} scale={scale}", actual, expected).Require(1e-12, roundoff);
    }

    [Theory]
    [InlineData(FastmaxNormalization.MeanCentered, 2)]
    [InlineData(FastmaxNormalization.ZeroCentered, 1)]
    [InlineData(FastmaxNormalization.SquaredNorm, 2)]
    [InlineData(FastmaxNormalization.None, 3)]
    public void Causal_fastmax_never_looks_ahead_including_its_normalization(FastmaxNormalization normalization, int order)
    {
        var options = new FastmaxOptions { Causal = true, Normalization = normalization, Order = order, ChunkSize = 4 };
        using var x = randn(1, 2, 20, 3, dtype: ScalarType.Float64) * 0.3;
        using var changed = x.clone();
        changed[.., .., 12] *= 50;   // a much larger token: a sequence-wide maximum would rescale every earlier token
        using var before = FastmaxFunctional.Attention(x, x, x, options);
        using var after = FastmaxFunctional.Attention(changed, changed, changed, options);
        ErrorReport.Of("outputs before the changed token", after.narrow(2, 0, 12), before.narrow(2, 0, 12)).Require(1e-13);
    }

    [Fact]
    public void Taylor_features_reproduce_the_polynomial_kernel()
    {
        var a = new[] { 0.7, -1.3, 0.4, 0.25 };
        using var x = randn(3, 6, dtype: ScalarType.Float64);
        using var y = randn(4, 6, dtype: ScalarType.Float64);
        using var viaFeatures = TaylorFeatures.Query(x, a).matmul(TaylorFeatures.Key(y, 3).t());
        using var direct = TaylorFeatures.Polynomial(x.matmul(y.t()), a);
        Assert.Equal(TaylorFeatures.Size(6, 3), TaylorFeatures.Query(x, a).shape[^1]);
        Assert.Equal(1 + 6 + 21 + 56, TaylorFeatures.Size(6, 3));
        ErrorReport.Of("features", viaFeatures, direct).Require(1e-13);
    }
}
