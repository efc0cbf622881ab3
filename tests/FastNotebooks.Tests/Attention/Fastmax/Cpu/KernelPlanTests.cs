using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.Reference;
using FastNotebooks.Attention.Fastmax.TensorOps;
using FastNotebooks.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>
/// Every operation that has a CPU kernel, run by the CPU plan and by the tensor-op plan on the same inputs: packed features,
/// the products with a state (φ·W, uᵀ·φ), the feature gradient, the running chunk states, the masked polynomial, Ĝ′, the
/// max-norm normalization, and the order-1 kernels. Float64 reaches the per-token loops; float32 on AVX-512 the register tiles.
/// Each case first asserts that the CPU kernel takes the inputs, so no comparison is of a form with itself.
/// </summary>
public class KernelPlanTests
{
    [Fact]
    public void Per_token_loops_match_the_tensor_op_forms() => Compare(ScalarType.Float64, 1e-12);

    [Avx512Fact]
    public void Register_tiles_match_the_tensor_op_forms() => Compare(ScalarType.Float32, 2e-5);

    static void Compare(ScalarType dtype, double tolerance)
    {
        var (cpu, ops) = (KernelPlan.Cpu, KernelPlan.TensorOps);
        foreach (int d in new[] { 6, 33 })
        {
            using var scope = NewDisposeScope();
            var generator = new Generator(5 + (ulong)d);
            var a = new FastmaxOptions { Order = 2 }.ResolvedCoefficients();
            var (onCpu, onOps) = (new PackedTaylorFeatures(d, a, cpu), new PackedTaylorFeatures(d, a, ops));
            long n = 77, c = 9;
            string name = $"D={d} {dtype}";
            var x = onOps.Extend(randn(new long[] { 2, 3, n, d }, dtype: dtype, generator: generator) / Math.Sqrt(d)); // [2, 3, n, 2D̃]
            var u = randn(new long[] { 2, 3, n, c }, dtype: dtype, generator: generator);
            var state = randn(new long[] { 2, 3, onOps.Size, c }, dtype: dtype, generator: generator);
            if (dtype == ScalarType.Float32)
            {
                Assert.True(TokenColumns.Supports(onCpu, x, state, u), name);
                Assert.True(FeatureStates.Supports(onCpu, x, u), name);
            }
            else Assert.True(PackedFeatureLoops.Supports(onCpu, x), name);

            ErrorReport.Of($"φ ({name})", onCpu.Build(x), onOps.Build(x)).Require(tolerance);
            ErrorReport.Of($"φ·W ({name})", onCpu.Project(x, state), onOps.Project(x, state)).Require(tolerance);
            ErrorReport.Of($"uᵀ·φ ({name})", onCpu.StateTransposed(x, u), onOps.StateTransposed(x, u)).Require(tolerance);
            ErrorReport.Of($"∇ (φ·W) ({name})", onCpu.Gradient(x, u, state), onOps.Gradient(x, u, state)).Require(tolerance);
            ErrorReport.Of($"a·b ({name})", cpu.MatMul(u, state.transpose(-1, -2)), ops.MatMul(u, state.transpose(-1, -2))).Require(tolerance);

            // Running states of G = 4 chunks: both plans update their own copy of the carry.
            var delta = randn(new long[] { 2, 3, 4, c, onOps.Size }, dtype: dtype, generator: generator);
            var carry = randn(new long[] { 2, 3, c, onOps.Size }, dtype: dtype, generator: generator);
            foreach (bool reverse in new[] { false, true })
            {
                var (carryCpu, carryOps) = (carry.clone(), carry.clone());
                Assert.True(PackedFeatureLoops.SupportsRunningStates(delta, carryCpu), name);
                ErrorReport.Of($"running states reverse={reverse} ({name})", onCpu.RunningStates(delta, carryCpu, reverse), onOps.RunningStates(delta, carryOps, reverse)).Require(tolerance);
                ErrorReport.Of($"carry reverse={reverse} ({name})", carryCpu, carryOps).Require(tolerance);
            }

            // The causal kernel's masked blocks, in place on the CPU plan: each plan gets its own copies.
            var scores = randn(new long[] { 2, 3, 64, 64 }, dtype: dtype, generator: generator).tanh();
            var upstream = randn(new long[] { 2, 3, 64, 64 }, dtype: dtype, generator: generator);
            Assert.True(MaskedPolynomialLoops.Supports(scores, upstream), name);
            ErrorReport.Of($"tril f(s) ({name})", cpu.MaskedPolynomial(scores.clone(), a), ops.MaskedPolynomial(scores.clone(), a)).Require(tolerance);
            var b = TaylorFeatures.Derivative(a);
            var (fCpu, dsCpu) = cpu.MaskedPolynomialAndDerivative(scores.clone(), upstream.clone(), a, b);
            var (fOps, dsOps) = ops.MaskedPolynomialAndDerivative(scores.clone(), upstream.clone(), a, b);
            ErrorReport.Of($"tril f(s) with f′ ({name})", fCpu, fOps).Require(tolerance);
            ErrorReport.Of($"tril f′(s)·u ({name})", dsCpu, dsOps).Require(tolerance);
            // Blocks whose entries above the diagonal were never written (SimdGemm.Triangle.LowerOutputUnwritten) may hold anything
            // there, NaN included: both forms mask them after the arithmetic, and the results are the same.
            var unwritten = ones_like(scores, dtype: ScalarType.Bool).triu(1);
            var (fNan, dsNan) = ops.MaskedPolynomialAndDerivative(scores.masked_fill(unwritten, double.NaN), upstream.masked_fill(unwritten, double.NaN), a, b);
            Assert.True(Bits.Same(fNan, fOps) && Bits.Same(dsNan, dsOps), $"NaN above the diagonal reached the tensor-op form's result ({name})");
            var (fNanCpu, dsNanCpu) = cpu.MaskedPolynomialAndDerivative(scores.masked_fill(unwritten, double.NaN), upstream.masked_fill(unwritten, double.NaN), a, b);
            Assert.True(Bits.Same(fNanCpu, fCpu) && Bits.Same(dsNanCpu, dsCpu), $"NaN above the diagonal reached the loops' result ({name})");
            Assert.True(Bits.Same(cpu.MaskedPolynomial(scores.masked_fill(unwritten, double.NaN), a), fCpu), $"NaN above the diagonal reached tril f(s) ({name})");

            // Ĝ′ from o, g, dL/do.
            var o = randn(new long[] { 2, 3, n, c }, dtype: dtype, generator: generator);
            var g = rand(new long[] { 2, 3, n }, dtype: dtype, generator: generator) + 0.5;
            Assert.True(TokenLoops.SupportsScaledOutputGradients(o, g, u), name);
            ErrorReport.Of($"Ĝ′ ({name})", cpu.ScaledOutputGradients(o, g, u).GPrime, ops.ScaledOutputGradients(o, g, u).GPrime).Require(tolerance);

            // The max-norm normalizations, forward (the backward is compared in MaxNormLoopsTests).
            var raw = randn(new long[] { 2, 3, n, d }, dtype: dtype, generator: generator);
            Assert.True(MaxNormLoops.Supports(raw), name);
            foreach (var normalization in new[] { FastmaxNormalization.MeanCentered, FastmaxNormalization.ZeroCentered })
                foreach (bool causal in new[] { false, true })
                    ErrorReport.Of($"{normalization} causal={causal} ({name})",
                        FastmaxNormalizer.Normalize(raw, normalization, causal, cpu), FastmaxNormalizer.Normalize(raw, normalization, causal, ops)).Require(tolerance);
        }
    }

    /// <summary>The order-1 kernels (<see cref="FirstOrderTiles"/>, <see cref="FirstOrderCausalScans"/>) as the dispatch runs them, against the tensor-op plan.</summary>
    [Avx512Fact]
    public void First_order_kernels_match_the_tensor_op_plan()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(13);
        var a = new FastmaxOptions { Order = 1 }.ResolvedCoefficients();
        var q = FastmaxDense.Normalize(randn(new long[] { 2, 2, 90, 12 }, generator: generator), FastmaxNormalization.MeanCentered);
        var k = FastmaxDense.Normalize(randn(new long[] { 2, 2, 97, 12 }, generator: generator), FastmaxNormalization.MeanCentered);
        var v = randn(new long[] { 2, 2, 97, 7 }, generator: generator);
        var dO = randn(new long[] { 2, 2, 90, 7 }, generator: generator);
        Assert.True(FirstOrderTiles.Supports(q, k, v));
        Assert.True(FirstOrderCausalScans.Supports(q));
        foreach (bool causal in new[] { false, true })
        {
            var (oCpu, gCpu, sCpu) = FastmaxDispatch.Forward(FastmaxBackend.Cpu, KernelPlan.Cpu, q, k, v, a, causal, 16);
            var (oOps, gOps, sOps) = FastmaxDispatch.Forward(FastmaxBackend.TensorOps, KernelPlan.TensorOps, q, k, v, a, causal, 16);
            ErrorReport.Of($"o causal={causal}", oCpu, oOps).Require(1e-5);
            ErrorReport.Of($"g causal={causal}", gCpu, gOps).Require(1e-5);
            var cpuGrads = FastmaxDispatch.Backward(FastmaxBackend.Cpu, KernelPlan.Cpu, q, k, v, oCpu, gCpu, dO, a, causal, 16, sCpu);
            var opsGrads = FastmaxDispatch.Backward(FastmaxBackend.TensorOps, KernelPlan.TensorOps, q, k, v, oOps, gOps, dO, a, causal, 16, sOps);
            ErrorReport.Of($"dq causal={causal}", cpuGrads.Dq, opsGrads.Dq).Require(1e-4);
            ErrorReport.Of($"dk causal={causal}", cpuGrads.Dk, opsGrads.Dk).Require(1e-4);
            ErrorReport.Of($"dv causal={causal}", cpuGrads.Dv, opsGrads.Dv).Require(1e-4);
        }
    }
}
