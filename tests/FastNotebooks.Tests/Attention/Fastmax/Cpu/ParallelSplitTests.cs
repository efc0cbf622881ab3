using FastNotebooks.Attention.Fastmax;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>
/// The kernels' own loops split over threads only for large work (<see cref="TokenLoops.MinWorkPerThread"/>), which the other
/// tests' shapes never reach. Here every loop is split: each output element is still computed by one thread in the same
/// order, so the results must equal the unsplit ones exactly.
/// </summary>
[Collection("FastmaxFunction observer")]   // alone: the threshold is process-wide
public class ParallelSplitTests
{
    [Fact]
    public void Split_loops_give_the_same_outputs_and_gradients()
    {
        // Two intra-op threads whatever an earlier test left (the bench and scaling tests run on one).
        int threads = torch.get_num_threads();
        torch.set_num_threads(2);
        try { CompareSplitAndWhole(); }
        finally { torch.set_num_threads(threads); }
    }

    /// <summary>
    /// The folded normalization (unmasked p = 2, float32, D = 32) with its head groups on two threads: the largest norms of q and k
    /// and their scale gradients then run one input per head thread. Same bits as on one thread.
    /// </summary>
    [Theory]
    [InlineData(FastmaxNormalization.MeanCentered)]
    [InlineData(FastmaxNormalization.ZeroCentered)]
    public void The_folded_normalization_on_the_head_threads_gives_the_same_bits(FastmaxNormalization normalization)
    {
        int threads = torch.get_num_threads();
        torch.set_num_threads(2);
        try
        {
            using var scope = NewDisposeScope();
            var generator = new Generator(23);
            var inputs = Enumerable.Range(0, 3).Select(_ => randn(new long[] { 2, 3, 700, 32 }, generator: generator)).ToArray();
            var weights = randn(new long[] { 2, 3, 700, 32 }, generator: generator);
            var options = new FastmaxOptions { Normalization = normalization, Algorithm = FastmaxAlgorithm.Factorized };
            var plan = FastmaxDispatch.Plan(FastmaxDispatch.Resolve(options.Backend, DeviceType.CPU));
            Assert.True(FastmaxDispatch.FoldsNormalization(options, options.ResolvedCoefficients(), plan, FastmaxAlgorithm.Factorized, false,
                inputs[0], inputs[1], inputs[2]));
            Tensor[] Run()
            {
                var x = inputs.Select(t => t.detach().requires_grad_()).ToArray();
                var o = FastmaxFunctional.Attention(x[0], x[1], x[2], options);
                var grads = autograd.grad(new[] { (o * weights).sum() }, x);
                return new[] { o.detach() }.Concat(grads).ToArray();
            }
            // No thread for any loop or head group, then every split that the threshold allows.
            long previous = TokenLoops.MinWorkPerThread;
            Tensor[] whole, split;
            try
            {
                TokenLoops.MinWorkPerThread = long.MaxValue;
                whole = Run();
                TokenLoops.MinWorkPerThread = 1;
                split = Run();
            }
            finally { TokenLoops.MinWorkPerThread = previous; }
            for (int i = 0; i < whole.Length; i++)
                Assert.True(whole[i].eq(split[i]).all().item<bool>(), $"{normalization}: {"o dq dk dv".Split(' ')[i]} differs on the head threads");
        }
        finally { torch.set_num_threads(threads); }
    }

    /// <summary>The dropout mask (<see cref="KeepMask"/>) is the same drawn on one thread or split over two.</summary>
    [Fact]
    public void The_keep_mask_does_not_depend_on_the_thread_count()
    {
        int threads = torch.get_num_threads();
        long previous = TokenLoops.MinWorkPerThread;
        TokenLoops.MinWorkPerThread = 1;
        try
        {
            Tensor Draw(int count) { torch.set_num_threads(count); manual_seed(9); return KeepMask.Draw(new long[] { 4, 777 }, 0.7, ScalarType.Float64); }
            using var one = Draw(1);
            using var two = Draw(2);
            Assert.True(one.equal(two).all().item<bool>());
        }
        finally
        {
            TokenLoops.MinWorkPerThread = previous;
            torch.set_num_threads(threads);
        }
    }

    static void CompareSplitAndWhole()
    {
        foreach (int order in new[] { 1, 2 })
            foreach (bool causal in new[] { false, true })
                foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
                {
                    using var scope = NewDisposeScope();
                    var generator = new Generator(21);
                    var inputs = Enumerable.Range(0, 3).Select(_ => randn(new long[] { 2, 3, 700, 19 }, dtype: dtype, generator: generator)).ToArray();
                    var weights = randn(new long[] { 2, 3, 700, 19 }, dtype: dtype, generator: generator);
                    var options = new FastmaxOptions { Order = order, Causal = causal, ChunkSize = 64, Algorithm = FastmaxAlgorithm.Factorized };
                    Tensor[] Run()
                    {
                        var x = inputs.Select(t => t.detach().requires_grad_()).ToArray();
                        var o = FastmaxFunctional.Attention(x[0], x[1], x[2], options);
                        var grads = autograd.grad(new[] { (o * weights).sum() }, x);
                        return new[] { o.detach() }.Concat(grads).ToArray();
                    }
                    var whole = Run();
                    long previous = TokenLoops.MinWorkPerThread;
                    TokenLoops.MinWorkPerThread = 1;
                    Tensor[] split;
                    try { split = Run(); }
                    finally { TokenLoops.MinWorkPerThread = previous; }
                    for (int i = 0; i < whole.Length; i++)
                        Assert.True(whole[i].eq(split[i]).all().item<bool>(), $"p={order} causal={causal} {dtype}: {"o dq dk dv".Split(' ')[i]} differs when the loops are split");
                }
    }
}
