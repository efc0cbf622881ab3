using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Bench;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax;

/// <summary>
/// The stage profile (<see cref="StageClock"/> on a <see cref="KernelPlan"/>): it sees the pieces the kernel runs, with the
/// work their shapes imply, counts a piece inside another once, and changes no bit of the result.
/// </summary>
public class StageClockTests
{
    static (Tensor Q, Tensor K, Tensor V) Inputs(int n, int d)
    {
        var generator = new Generator(3);
        long[] shape = { 1, 1, n, d };
        // Rows of norm ≤ 1, as the kernel gets them after normalization.
        Tensor Unit(Tensor x) => x / x.norm(-1, keepdim: true).max();
        return (Unit(randn(shape, generator: generator)), Unit(randn(shape, generator: generator)), randn(shape, generator: generator));
    }

    [Fact]
    public void The_unmasked_forward_shows_its_two_products_with_their_work_and_the_same_bits()
    {
        using var scope = NewDisposeScope();
        const int n = 600, d = 32;
        var (q, k, v) = Inputs(n, d);
        var a = new FastmaxOptions { Order = 2 }.ResolvedCoefficients();
        var clock = new StageClock();
        foreach (var plan in new[] { KernelPlan.Cpu, KernelPlan.TensorOps })
        {
            clock.Reset();
            var (timed, _, _) = FastmaxDispatch.Forward(FastmaxBackend.Cpu, plan.WithClock(clock), q, k, v, a, false, 64);
            var (plain, _, _) = FastmaxDispatch.Forward(FastmaxBackend.Cpu, plan, q, k, v, a, false, 64);
            Assert.True(timed.eq(plain).all().item<bool>(), $"{plan}: the clock changed the output");

            var stages = clock.Stages.ToDictionary(s => s.Stage);
            // Packed features at D = 32: 17 rows of D̃ = 33 (1 + 32 + 528 = 561); both products are 2·N·F·(Dv + 1) flops.
            double product = 2.0 * n * (17 * 33) * (d + 1);
            Assert.Equal(product, stages[KernelPlan.Stages.State].Flops);
            Assert.Equal(product, stages[KernelPlan.Stages.Project].Flops);
            Assert.Equal(1, stages[KernelPlan.Stages.Project].Calls);
            Assert.Contains(KernelPlan.Stages.Inputs, stages.Keys);
            // The CPU kernels fuse the output division into the projection; the tensor-op forms divide after it.
            Assert.Equal(plan == KernelPlan.TensorOps, stages.ContainsKey(KernelPlan.Stages.Output));
            Assert.All(clock.Stages, s => Assert.True(s.Milliseconds >= 0, $"{s.Stage}: {s.Milliseconds} ms"));
            // On the tensor-op forms the products build features and call a GEMM inside them: those count as the product only.
            Assert.DoesNotContain(KernelPlan.Stages.Features, stages.Keys);
            Assert.DoesNotContain(KernelPlan.Stages.Gemm, stages.Keys);
        }
    }

    [Fact]
    public void The_causal_forward_shows_its_chunk_blocks()
    {
        using var scope = NewDisposeScope();
        const int n = 256, d = 8, chunk = 64;
        var (q, k, v) = Inputs(n, d);
        var a = new FastmaxOptions { Order = 2 }.ResolvedCoefficients();
        var clock = new StageClock();
        FastmaxDispatch.Forward(FastmaxBackend.Cpu, KernelPlan.Cpu.WithClock(clock), q, k, v, a, true, chunk);
        var stages = clock.Stages.ToDictionary(s => s.Stage);
        // Per chunk: scores q·kᵀ (c × D × c) and the masked block times v (c × c × Dv: the masked polynomial writes the row sums
        // that a column of ones would make), or times [v, 1] where the product is libtorch's.
        int productColumns = SimdGemm.Available ? d : d + 1;
        double blocks = n / chunk * (2.0 * chunk * d * chunk + 2.0 * chunk * chunk * productColumns);
        Assert.Equal(blocks, stages[KernelPlan.Stages.Gemm].Flops);
        Assert.Contains(KernelPlan.Stages.MaskedPolynomial, stages.Keys);
        Assert.Contains(KernelPlan.Stages.RunningStates, stages.Keys);
    }

    [Fact]
    public void Kernel_stages_add_up_to_each_pass_and_name_bad_arguments()
    {
        using var scope = NewDisposeScope();
        var rows = KernelStages.Measure(300, 8, 2, causal: false, peak: null, repeats: 1);
        foreach (var pass in new[] { "forward", "backward" })
        {
            var ofPass = rows.Where(r => r.Pass == pass).ToList();
            double total = ofPass.Single(r => r.Stage == "total").Ms;
            Assert.Equal(total, ofPass.Where(r => r.Stage != "total").Sum(r => r.Ms), 6);
            Assert.Contains(ofPass, r => r.Stage == KernelPlan.Stages.Project && r.Gflops > 0);
        }
        Assert.Contains(rows, r => r.Pass == "entry point");
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => KernelStages.Measure(0, 8, 2, false, null));
        Assert.Equal("n", error.ParamName);
    }
}
