using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.Reference;
using FastNotebooks.Attention.Fastmax.TensorOps;
using FastNotebooks.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Reference;

/// <summary>
/// The references against each other first, in float64: the dense definition (N×N scores, normalized rows) against the N×N
/// form with a [v, 1] product, the readable factorized form (gathered features) and the readable chunked form (one state per
/// chunk, a masked block inside it), outputs and gradients. Every fast kernel is then tested against these.
/// </summary>
public class ReferencesAgreeTests
{
    public static TheoryData<int, bool, int, int, int, int> Cases() => new()
    {
        { 1, false, 63, 63, 5, 3 }, { 1, true, 63, 70, 5, 3 }, { 2, false, 45, 50, 7, 4 }, { 2, true, 45, 45, 7, 4 },
        { 2, true, 33, 40, 1, 2 }, { 3, false, 21, 29, 3, 2 }, { 3, true, 21, 21, 3, 5 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Dense_quadratic_factorized_and_chunked_references_agree(int order, bool causal, int nq, int nk, int d, int dv)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(29);
        var options = new FastmaxOptions { Order = order, Causal = causal };
        var a = options.ResolvedCoefficients();
        var q = FastmaxDense.Normalize(randn(new long[] { 2, 1, nq, d }, dtype: ScalarType.Float64, generator: generator), options.Normalization, causal);
        var k = FastmaxDense.Normalize(randn(new long[] { 2, 1, nk, d }, dtype: ScalarType.Float64, generator: generator), options.Normalization, causal);
        var v = randn(new long[] { 2, 1, nk, dv }, dtype: ScalarType.Float64, generator: generator);
        var dO = randn(new long[] { 2, 1, nq, dv }, dtype: ScalarType.Float64, generator: generator);
        string name = $"p={order} causal={causal} Nq={nq} Nk={nk} D={d} Dv={dv}";

        // The definition on normalized inputs: no normalization left to apply.
        var definition = options with { Normalization = FastmaxNormalization.None };
        var dense = LossGradients.Of((x, y, z) => FastmaxDense.Attention(x, y, z, definition), q, k, v, dO);
        var quadratic = LossGradients.Of((x, y, z) => FastmaxQuadratic.Attention(x, y, z, a, causal), q, k, v, dO);
        Compare($"N×N form ({name})", quadratic, dense);

        const int chunk = 8;   // several chunks at these lengths
        var (o, g) = causal ? ChunkedReference.Forward(q, k, v, a, chunk) : FactorizedReference.Forward(q, k, v, a, chunk);
        var grads = causal ? ChunkedReference.Backward(q, k, v, o, g, dO, a, chunk) : FactorizedReference.Backward(q, k, v, o, g, dO, a, chunk);
        Compare($"{(causal ? "chunked" : "factorized")} reference ({name})", new[] { o, grads.Dq, grads.Dk, grads.Dv }, dense);
    }

    /// <summary>[o, dq, dk, dv] against the definition's.</summary>
    static void Compare(string name, Tensor[] actual, Tensor[] expected)
    {
        ErrorReport.Of($"o, {name}", actual[0], expected[0]).Require(1e-12).RequireElementwise(1e-6);
        ErrorReport.Of($"dq, {name}", actual[1], expected[1]).Require(1e-10);
        ErrorReport.Of($"dk, {name}", actual[2], expected[2]).Require(1e-10);
        ErrorReport.Of($"dv, {name}", actual[3], expected[3]).Require(1e-10).RequireElementwise(1e-6);
    }
}
