using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Tests.Platform;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax;

/// <summary>
/// A forward without a gradient leaves no native block for a .NET finalizer (environment.md, "The C heap"): mallinfo2's heap in use
/// over many calls, the collection running alone.
/// </summary>
[Collection("C heap")]
public class ForwardLeftoversTests
{
    /// <summary>
    /// 300 calls of the functional form (the normalization, then the kernel without its autograd node) hold next to nothing, for
    /// order 1 (its max-norm and the tiles) and order 2 causal; the same kernel through its autograd node, 300 times, holds the
    /// node's leftovers, which shows that the measure sees them.
    /// </summary>
    [SkippableTheory]
    [InlineData(1, false)]
    [InlineData(1, true)]
    [InlineData(2, true)]
    public void A_forward_without_a_gradient_leaves_nothing_for_the_finalizer(int order, bool causal)
    {
        Skip.IfNot(CHeap.Glibc, "the C library is not glibc: mallinfo2 cannot report the heap in use.");
        var generator = new Generator(17);
        long[] shape = { 1, 2, 256, 32 };
        using var q = randn(shape, generator: generator);
        using var k = randn(shape, generator: generator);
        using var v = randn(shape, generator: generator);
        var options = new FastmaxOptions { Order = order, Causal = causal };
        var a = options.ResolvedCoefficients();
        var plan = FastmaxDispatch.Plan(FastmaxDispatch.Resolve(options.Backend, q.device_type), options.FeatureChunkElements);

        long Held(Action call)
        {
            for (int i = 0; i < 3; i++)   // warm-up: the first calls and the first collections allocate for good
            {
                call();
                NativeHeap.ReleaseUnownedNativeObjects();
            }
            long before = CHeap.InUse();
            for (int i = 0; i < 300; i++) call();
            long held = CHeap.InUse() - before;
            NativeHeap.ReleaseUnownedNativeObjects();
            return held - (CHeap.InUse() - before);   // what the collection freed: the calls' leftovers
        }
        long byNode = Held(() => { using var scope = NewDisposeScope(); using var noGraph = no_grad(); FastmaxFunction.Apply(q, k, v, a, causal, 64, FastmaxBackend.Cpu, plan); });
        long byFunctional = Held(() => { using var scope = NewDisposeScope(); using var noGraph = no_grad(); FastmaxFunctional.Attention(q, k, v, options); });
        Assert.True(byNode >= 300 * 32, $"300 calls through the autograd node left only {byNode} bytes: the measure does not see their leftovers");
        Assert.True(byFunctional < 300 * 4, $"300 forwards left {byFunctional} bytes for the finalizer (through the node: {byNode})");
    }
}
