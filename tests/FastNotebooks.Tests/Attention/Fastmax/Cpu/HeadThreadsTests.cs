using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.TensorOps;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>
/// Head groups on dedicated threads (<see cref="HeadThreads"/>): the workers run with one libtorch thread and the caller's
/// grad mode, failures reach the caller, and Fastmax gives the same bits on two threads as on one, whether the groups are
/// there for the threads only (the budget shared out) or because one chunk cannot hold all heads.
/// </summary>
[Collection("FastmaxFunction observer")]   // alone: the thread count and the split threshold are process-wide
public class HeadThreadsTests
{
    [Fact]
    public void Workers_run_with_one_libtorch_thread_and_leave_the_callers_count()
    {
        int threads = torch.get_num_threads();
        try
        {
            torch.set_num_threads(2);
            var seen = HeadThreads.Run(4, 2, _ => (Thread.CurrentThread.ManagedThreadId, torch.get_num_threads()));
            Assert.All(seen, s => Assert.Equal(1, s.Item2));
            Assert.DoesNotContain(seen, s => s.ManagedThreadId == Environment.CurrentManagedThreadId);
            Assert.Equal(2, torch.get_num_threads());
        }
        finally { torch.set_num_threads(threads); }
    }

    [Fact]
    public void Workers_take_the_callers_grad_mode()
    {
        bool[] Modes() => HeadThreads.Run(2, 2, _ => torch.is_grad_enabled());
        using (no_grad()) Assert.All(Modes(), Assert.False);
        Assert.True(torch.is_grad_enabled());
        Assert.All(Modes(), Assert.True);
    }

    [Fact]
    public void A_failure_on_a_worker_reaches_the_caller_and_the_workers_stay_usable()
    {
        var e = Assert.Throws<InvalidOperationException>(() => HeadThreads.Run<int>(3, 2, g => g == 1 ? throw new InvalidOperationException("group 1") : g));
        Assert.Equal("group 1", e.Message);
        Assert.Equal(new[] { 0, 1, 2 }, HeadThreads.Run(3, 2, g => g));
    }

    [Fact]
    public void An_interrupted_caller_leaves_the_workers_to_finish_its_job_before_the_next()
    {
        using var started = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        Exception? seen = null;
        var caller = new Thread(() =>
        {
            try { HeadThreads.Run(2, 2, g => { started.Set(); release.Wait(); return g; }); }
            catch (Exception e) { seen = e; }
        });
        caller.Start();
        started.Wait();          // a worker is inside the job; the caller waits for it
        caller.Interrupt();
        caller.Join();
        Assert.IsType<ThreadInterruptedException>(seen);
        release.Set();           // the abandoned job ends; the next one gets the workers to itself
        Assert.Equal(new[] { 0, 1, 2, 3 }, HeadThreads.Run(4, 2, g => g));
    }

    [Avx512Theory]
    [InlineData(false, 240_000, 16)]    // all heads fit together (in chunks of 150 tokens): one group per thread, each with its share of the budget
    [InlineData(true, 240_000, 16)]
    [InlineData(false, 30_000, 16)]     // a small budget: groups of one head that the threads take in turn
    [InlineData(true, 30_000, 16)]
    [InlineData(false, 880_000, 32)]    // D = 32: the max-norm folded into the kernel (FoldedNormalization), its scales split with the heads
    [InlineData(false, 110_000, 32)]
    public void Two_threads_give_the_bits_of_one(bool causal, long budget, int d)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(31);
        long[] shape = { 2, 3, 300, d };
        var inputs = Enumerable.Range(0, 3).Select(_ => randn(shape, generator: generator)).ToArray();
        var weights = randn(shape, generator: generator);
        var options = new FastmaxOptions { Order = 2, Causal = causal, Algorithm = FastmaxAlgorithm.Factorized, FeatureChunkElements = budget };
        Tensor[] Run()
        {
            var x = inputs.Select(t => t.detach().requires_grad_()).ToArray();
            var o = FastmaxFunctional.Attention(x[0], x[1], x[2], options);
            return new[] { o.detach() }.Concat(autograd.grad(new[] { (o * weights).sum() }, x)).ToArray();
        }
        int threads = torch.get_num_threads();
        long previous = TokenLoops.MinWorkPerThread;
        try
        {
            torch.set_num_threads(1);
            var one = Run();
            torch.set_num_threads(2);
            TokenLoops.MinWorkPerThread = 1;   // every call splits its heads
            var features = new PackedTaylorFeatures(d, options.ResolvedCoefficients(), KernelPlan.Cpu.WithFeatureChunkElements(budget));
            var split = FastmaxFactorized.SplitOf(features, inputs[0], causal ? options.ResolvedChunkSize(d) : FastmaxFactorized.MinimumTokensPerChunk,
                FastmaxFactorized.Work(features, inputs[0], inputs[1], inputs[2]));
            Assert.True(split.Splits && split.Threads == 2, $"the heads are not split over two threads: {split}");
            Assert.Equal(budget is 30_000 or 110_000, !split.ShareBudget);
            using (no_grad())
                Assert.Equal(d == 32, FastmaxDispatch.FoldsNormalization(options, options.ResolvedCoefficients(), features.Plan, FastmaxAlgorithm.Factorized, false,
                    inputs[0], inputs[1], inputs[2]));
            var two = Run();
            for (int i = 0; i < one.Length; i++)
                Assert.True(one[i].eq(two[i]).all().item<bool>(), $"causal={causal} budget={budget} D={d}: {"o dq dk dv".Split(' ')[i]} differs on two threads");
        }
        finally
        {
            TokenLoops.MinWorkPerThread = previous;
            torch.set_num_threads(threads);
        }
    }
}
