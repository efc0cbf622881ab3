using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.TensorOps;
using FastNotebooks.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>
/// The states uᵀ·φ(x̃) of long sequences (<see cref="FeatureStates"/>): against the tensor-op form in float64 (features as rows,
/// one GEMM), and the same bits on one thread as with the slices split over two, for the state panels (D̃ ≥ 32) and the
/// feature-row path (D̃ &lt; 32).
/// </summary>
[Collection("FastmaxFunction observer")]   // alone: the split threshold is process-wide
public class FeatureStatesTests
{
    [Avx512Theory]
    [InlineData(32, 1, 2100)]     // state panels, one slice
    [InlineData(16, 1, 2100)]     // feature rows and the SIMD GEMM
    [InlineData(33, 3, 2100)]     // an odd tail of the windows, several slices shared by the threads
    [InlineData(16, 2, 17084)]    // a long sequence: 17,084 float32 terms per entry
    public void Long_sequences_match_the_float64_form_whatever_the_thread_count(int d, int heads, int n)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(17 + (ulong)d);
        var a = new FastmaxOptions { Order = 2 }.ResolvedCoefficients();
        var (onCpu, onOps) = (new PackedTaylorFeatures(d, a, KernelPlan.Cpu), new PackedTaylorFeatures(d, a, KernelPlan.TensorOps));
        // Lengths that are not a multiple of the 64-token blocks.
        long c = 5;
        var x = onOps.Extend(randn(new long[] { 1, heads, n, d }, generator: generator) / Math.Sqrt(d));
        var u = randn(new long[] { 1, heads, n, c }, generator: generator);
        Assert.True(FeatureStates.Supports(onCpu, x, u));

        int threads = torch.get_num_threads();
        long previous = TokenLoops.MinWorkPerThread;
        try
        {
            torch.set_num_threads(1);
            var one = onCpu.StateTransposed(x, u);
            torch.set_num_threads(2);
            TokenLoops.MinWorkPerThread = 1;   // every slice its own piece, shared by two threads
            var two = onCpu.StateTransposed(x, u);
            Assert.True(one.eq(two).all().item<bool>(), $"D={d}: the state differs between one thread and two");

            // The float64 sum of the tensor-op form is the expected value; float32 sums of 2100 terms hold about 5 digits.
            var expected = onOps.StateTransposed(x.to(ScalarType.Float64), u.to(ScalarType.Float64));
            ErrorReport.Of($"uᵀ·φ over {n} tokens, D={d}", one.to(ScalarType.Float64), expected).Require(2e-5);
        }
        finally
        {
            TokenLoops.MinWorkPerThread = previous;
            torch.set_num_threads(threads);
        }
    }
}
