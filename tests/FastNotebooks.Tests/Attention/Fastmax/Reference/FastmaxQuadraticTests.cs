using CsCheck;
using FastNotebooks.Attention;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Verification;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.Reference;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Reference;

/// <summary>The N×N form against the dense reference and the factorized kernel, and the rule that picks between them.</summary>
public class FastmaxQuadraticTests
{
    const int Iterations = 200;

    static Tensor Quadratic(Tensor q, Tensor k, Tensor v, FastmaxOptions options) =>
        FastmaxFunctional.Attention(q, k, v, options with { Algorithm = FastmaxAlgorithm.Quadratic });

    [Theory]
    [InlineData(ScalarType.Float64, 1e-10)]
    [InlineData(ScalarType.Float32, 1e-4)]
    public void Quadratic_matches_dense_over_random_cases(ScalarType dtype, double tolerance)
    {
        KernelCase.CheckWellConditioned(Iterations, dtype, (c, q, k, v) =>
            ErrorReport.Of($"output ({c})", Quadratic(q, k, v, c.Options),
                FastmaxDense.Attention(q.to(ScalarType.Float64), k.to(ScalarType.Float64), v.to(ScalarType.Float64), c.Options)).Require(tolerance));
    }

    [Fact]
    public void Quadratic_gradients_match_the_factorized_kernel()
    {
        KernelCase.CheckWellConditioned(Iterations, ScalarType.Float64, (c, q, k, v) =>
        {
            var weights = randn(c.B, c.H, c.Nq, c.Dv, dtype: ScalarType.Float64);
            var quadratic = Gradients(c.Options with { Algorithm = FastmaxAlgorithm.Quadratic }, q, k, v, weights);
            var factorized = Gradients(c.Options with { Algorithm = FastmaxAlgorithm.Factorized }, q, k, v, weights);
            double floor = c.ZeroGradientFloor(q, k);
            for (int i = 0; i < 3; i++)
                ErrorReport.Of($"{"qkv"[i]} gradient ({c})", quadratic[i], factorized[i]).Require(1e-8, absoluteFloor: i == 2 ? 1e-14 : floor);
        });
    }

    static Tensor[] Gradients(FastmaxOptions options, Tensor q, Tensor k, Tensor v, Tensor weights)
    {
        var (qq, kk, vv) = (q.detach().requires_grad_(), k.detach().requires_grad_(), v.detach().requires_grad_());
        using var loss = (FastmaxFunctional.Attention(qq, kk, vv, options) * weights).sum();
        return autograd.grad(new[] { loss }, new[] { qq, kk, vv }).ToArray();
    }

    [Theory]
    [InlineData(2, false, 1, 50, 24, FastmaxAlgorithm.Quadratic)]      // the MNIST model: 50 tokens, F = 325
    [InlineData(2, false, 512, 50, 24, FastmaxAlgorithm.Quadratic)]
    [InlineData(2, true, 1, 64, 8, FastmaxAlgorithm.Quadratic)]        // F = 45: at least 64 tokens
    [InlineData(2, true, 1, 65, 8, FastmaxAlgorithm.Factorized)]
    [InlineData(2, false, 1, 280, 32, FastmaxAlgorithm.Quadratic)]     // F = 561: up to F / 2
    [InlineData(2, false, 1, 281, 32, FastmaxAlgorithm.Factorized)]
    [InlineData(2, false, 1, 4096, 32, FastmaxAlgorithm.Factorized)]
    [InlineData(2, false, 1024, 200, 64, FastmaxAlgorithm.Factorized)] // scores over the memory cap
    [InlineData(1, false, 1, 16, 32, FastmaxAlgorithm.Factorized)]     // p = 1 unmasked: the closed form is cheaper
    [InlineData(1, true, 1, 64, 32, FastmaxAlgorithm.Quadratic)]
    [InlineData(1, true, 1, 65, 32, FastmaxAlgorithm.Factorized)]
    public void Auto_picks_the_quadratic_form_only_for_short_sequences(int order, bool causal, long heads, long n, long d, FastmaxAlgorithm expected) =>
        Assert.Equal(expected, FastmaxDispatch.Algorithm(FastmaxAlgorithm.Auto, order, causal, heads, n, n, d));

    [Theory]
    [InlineData(FastmaxAlgorithm.Factorized)]
    [InlineData(FastmaxAlgorithm.Quadratic)]
    public void An_explicit_algorithm_is_kept_at_any_size(FastmaxAlgorithm requested)
    {
        Assert.Equal(requested, FastmaxDispatch.Algorithm(requested, 2, false, 1, 4, 4, 8));
        Assert.Equal(requested, FastmaxDispatch.Algorithm(requested, 2, false, 1, 100_000, 100_000, 8));
    }

    [Fact]
    public void Models_use_auto_and_the_functional_form_defaults_to_factorized()
    {
        Assert.Equal(FastmaxAlgorithm.Auto, AttentionRegistry.FastmaxOptionsFor("fastmax2").Algorithm);
        Assert.Equal(FastmaxAlgorithm.Factorized, new FastmaxOptions().Algorithm);
    }
}
