using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.Reference;
using FastNotebooks.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax;

/// <summary>
/// Float32 Fastmax end to end at real head sizes, through the public entry point (normalization, kernel, custom backward),
/// against the float64 dense definition: p = 1 and 2, causal and not, D ∈ {16, 32, 64}, N up to 2048, Dv ≠ D and Nk ≠ Nq,
/// output and all three gradients. The CPU backend runs the AVX-512 register tiles where the processor has them; the same
/// cases on the tensor-op backend test what runs without them (and on other devices), on every processor.
/// </summary>
public class Float32EndToEndTests
{
    public static TheoryData<int, bool, int, FastmaxBackend> Cases()
    {
        var data = new TheoryData<int, bool, int, FastmaxBackend>();
        foreach (var backend in new[] { FastmaxBackend.Cpu, FastmaxBackend.TensorOps })
            foreach (int order in new[] { 1, 2 })
                foreach (bool causal in new[] { false, true })
                    foreach (int d in new[] { 16, 32, 64 })
                        data.Add(order, causal, d, backend);
        return data;
    }

    /// <summary>
    /// Tolerances, stated per quantity against the largest entry (and element-wise, against |expected| + √ε₃₂·max): float32 keeps
    /// about 7 digits and the sums run over up to 2048 tokens, so the output is held to 1e-5 and, since every gradient is a
    /// difference of such sums (Ĝ·(v − o)), the gradients to 1e-4; dq and dk also pass through the normalization's backward.
    /// </summary>
    const double OutputTolerance = 1e-5, GradientTolerance = 1e-4, ElementwiseTolerance = 1e-2;

    [Theory]
    [MemberData(nameof(Cases))]
    public void Float32_matches_the_float64_definition(int order, bool causal, int d, FastmaxBackend backend)
    {
        using var scope = NewDisposeScope();
        int nq = d == 16 ? 2048 : 10 * d, nk = nq + 3, dv = d / 2 + 3;   // 2048, 320 and 640 queries
        var generator = new Generator((ulong)(order * 1000 + d + (causal ? 7 : 0)));
        var q = randn(new long[] { 1, 1, nq, d }, dtype: ScalarType.Float64, generator: generator) * 3;
        var k = randn(new long[] { 1, 1, nk, d }, dtype: ScalarType.Float64, generator: generator) * 3;
        var v = randn(new long[] { 1, 1, nk, dv }, dtype: ScalarType.Float64, generator: generator);
        var dO = randn(new long[] { 1, 1, nq, dv }, dtype: ScalarType.Float64, generator: generator);
        var options = new FastmaxOptions { Order = order, Causal = causal, Backend = backend };

        var expected = LossGradients.Of((x, y, z) => FastmaxDense.Attention(x, y, z, options), q, k, v, dO);
        var actual = LossGradients.Of((x, y, z) => FastmaxFunctional.Attention(x, y, z, options), q.to(ScalarType.Float32), k.to(ScalarType.Float32),
            v.to(ScalarType.Float32), dO.to(ScalarType.Float32));
        string name = $"p={order} causal={causal} D={d} Dv={dv} Nq={nq} Nk={nk} {backend}";
        ErrorReport.Of($"o ({name})", actual[0], expected[0]).Require(OutputTolerance).RequireElementwise(ElementwiseTolerance);
        ErrorReport.Of($"dq ({name})", actual[1], expected[1]).Require(GradientTolerance).RequireElementwise(ElementwiseTolerance);
        ErrorReport.Of($"dk ({name})", actual[2], expected[2]).Require(GradientTolerance).RequireElementwise(ElementwiseTolerance);
        ErrorReport.Of($"dv ({name})", actual[3], expected[3]).Require(GradientTolerance).RequireElementwise(ElementwiseTolerance);
    }
}
