using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.TensorOps;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>
/// The pieces take x [..., n, D] in place of the extended [x, 1, x, 1] (<see cref="PackedTaylorFeatures.KernelInput"/>):
/// the CPU kernels then build x̃ in cache. Given either, every piece must give the same bits, on the CPU kernels (state panels
/// at D̃ ≥ 32, the feature-row path below it, the token-column products) and on the tensor-op forms (which extend a raw input);
/// likewise the state and the gradient of [v, 1] given as v with its column of ones added by the kernel.
/// </summary>
public class RawInputsTests
{
    [Avx512Theory]
    [InlineData(32, 100)]   // state panels; 100 tokens: a partial block of 64 and a partial strip of 32
    [InlineData(33, 70)]    // an odd tail of the windows
    [InlineData(16, 45)]    // D̃ < 32: the state's feature rows, which extend a raw input first
    public void Raw_and_extended_inputs_give_the_same_bits_on_the_cpu_kernels(int d, int n) => Compare(KernelPlan.Cpu, d, n);

    [Theory]
    [InlineData(32, 100)]
    [InlineData(5, 40)]
    public void Raw_and_extended_inputs_give_the_same_bits_on_the_tensor_op_forms(int d, int n) => Compare(KernelPlan.TensorOps, d, n);

    static void Compare(KernelPlan plan, int d, int n)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(41 + (ulong)d);
        var a = new FastmaxOptions { Order = 2 }.ResolvedCoefficients();
        var features = new PackedTaylorFeatures(d, a, plan);
        const long columns = 5;
        var raw = randn(new long[] { 1, 2, n, d }, generator: generator) / Math.Sqrt(d);
        var extended = features.Extend(raw);
        var u = randn(new long[] { 1, 2, n, columns }, generator: generator);
        var w = randn(new long[] { 1, 2, features.Size, columns }, generator: generator);

        void Same(string piece, Tensor fromRaw, Tensor fromExtended)
        {
            Assert.Equal(fromExtended.shape, fromRaw.shape);
            Assert.True(fromRaw.eq(fromExtended).all().item<bool>(), $"{plan}, D={d}: {piece} differs between raw and extended inputs");
        }
        Same("uᵀ·φ", features.StateTransposed(raw, u), features.StateTransposed(extended, u));
        Same("φ·W", features.Project(raw, w), features.Project(extended, w));
        Same("∇(φ·W)", features.Gradient(raw, u, w), features.Gradient(extended, u, w));
        Same("φ", features.Build(raw), features.Build(extended));
        // [v, 1] given as v: the state panels add the ones in cache, the other forms append them.
        var vOne = FastNotebooks.Attention.Fastmax.Reference.TaylorFeatures.AppendOnes(u);
        Same("uᵀ·φ with a column of ones", features.StateTransposed(raw, u, appendOne: true), features.StateTransposed(raw, vOne));
        Same("uᵀ·φ with a column of ones (extended)", features.StateTransposed(extended, u, appendOne: true), features.StateTransposed(extended, vOne));
        var wOne = randn(new long[] { 1, 2, features.Size, columns + 1 }, generator: generator);
        Same("∇(φ·W) with a column of ones", features.Gradient(raw, u, wOne, appendOne: true), features.Gradient(raw, vOne, wOne));
        Same("∇(φ·W) with a column of ones (extended)", features.Gradient(extended, u, wOne, appendOne: true), features.Gradient(extended, vOne, wOne));
    }

    [Avx512Fact]
    public void Only_the_cpu_kernels_with_state_panels_take_raw_inputs()
    {
        using var scope = NewDisposeScope();
        var a = new FastmaxOptions { Order = 2 }.ResolvedCoefficients();
        long Width(KernelPlan plan, int d, ScalarType dtype) =>
            new PackedTaylorFeatures(d, a, plan).KernelInput(zeros(new long[] { 1, 1, 8, d }, dtype: dtype)).shape[^1];
        Assert.Equal(32, Width(KernelPlan.Cpu, 32, ScalarType.Float32));
        Assert.Equal(2 * 17, Width(KernelPlan.Cpu, 16, ScalarType.Float32));      // D̃ < 32: no state panels
        Assert.Equal(2 * 33, Width(KernelPlan.Cpu, 32, ScalarType.Float64));      // the fused kernels are float32
        Assert.Equal(2 * 33, Width(KernelPlan.TensorOps, 32, ScalarType.Float32));
    }
}
