using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax;

/// <summary>
/// The backends through the public entry point on the same inputs: the CPU kernels against the tensor ops, and both against
/// the readable reference, output and every gradient (normalization included), in float64 and float32. In float32 on a
/// processor with AVX-512 the CPU backend runs its register tiles; elsewhere its per-token loops (float64 on any processor).
/// </summary>
public class BackendsAgreeTests
{
    public static TheoryData<int, bool, ScalarType> Cases()
    {
        var data = new TheoryData<int, bool, ScalarType>();
        foreach (var dtype in new[] { ScalarType.Float64, ScalarType.Float32 })
            foreach (int order in new[] { 1, 2, 3 })
                foreach (bool causal in new[] { false, true })
                    data.Add(order, causal, dtype);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Cpu_tensor_ops_and_reference_backends_agree(int order, bool causal, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(41);
        // D = 33: D̃ = 34 reaches the CPU kernels' state panels (D̃ ≥ 32) and an odd tail; Nq ≠ Nk, Dv ≠ D; chunks of 64.
        long nq = order == 3 ? 150 : 300, nk = nq + 7, d = order == 3 ? 7 : 33, dv = 5;
        var q = randn(new long[] { 2, 2, nq, d }, dtype: dtype, generator: generator);
        var k = randn(new long[] { 2, 2, nk, d }, dtype: dtype, generator: generator);
        var v = randn(new long[] { 2, 2, nk, dv }, dtype: dtype, generator: generator);
        var dO = randn(new long[] { 2, 2, nq, dv }, dtype: dtype, generator: generator);
        var options = new FastmaxOptions { Order = order, Causal = causal };
        Tensor[] Run(FastmaxBackend backend) => LossGradients.Of((x, y, z) => FastmaxFunctional.Attention(x, y, z, options with { Backend = backend }), q, k, v, dO);
        var (cpu, tensorOps, reference) = (Run(FastmaxBackend.Cpu), Run(FastmaxBackend.TensorOps), Run(FastmaxBackend.Reference));

        double tolerance = dtype == ScalarType.Float64 ? 1e-11 : 2e-5, gradientTolerance = dtype == ScalarType.Float64 ? 1e-9 : 2e-4;
        string name = $"p={order} causal={causal} {dtype}";
        foreach (var (label, actual, expected) in new[] { ("cpu vs tensor-ops", cpu, tensorOps), ("tensor-ops vs reference", tensorOps, reference) })
        {
            ErrorReport.Of($"o, {label} ({name})", actual[0], expected[0]).Require(tolerance);
            ErrorReport.Of($"dq, {label} ({name})", actual[1], expected[1]).Require(gradientTolerance);
            ErrorReport.Of($"dk, {label} ({name})", actual[2], expected[2]).Require(gradientTolerance);
            ErrorReport.Of($"dv, {label} ({name})", actual[3], expected[3]).Require(gradientTolerance);
        }
    }

    [Fact]
    public void Cpu_backend_rejects_tensors_elsewhere_by_name()
    {
        var error = Assert.Throws<ArgumentException>(() => FastmaxDispatch.Resolve(FastmaxBackend.Cpu, DeviceType.CUDA));
        Assert.Equal(nameof(FastmaxOptions.Backend), error.ParamName);
        Assert.Contains("CUDA", error.Message);
        Assert.Equal(FastmaxBackend.Cpu, FastmaxDispatch.Resolve(FastmaxBackend.Auto, DeviceType.CPU));
        Assert.Equal(FastmaxBackend.TensorOps, FastmaxDispatch.Resolve(FastmaxBackend.Auto, DeviceType.CUDA));
    }

    [Fact]
    public void Unknown_backend_is_rejected_by_name()
    {
        var error = Assert.Throws<ArgumentException>(() => new FastmaxOptions { Backend = (FastmaxBackend)17 }.Validate());
        Assert.Equal(nameof(FastmaxOptions.Backend), error.ParamName);
        Assert.Contains("17", error.Message);
    }
}
