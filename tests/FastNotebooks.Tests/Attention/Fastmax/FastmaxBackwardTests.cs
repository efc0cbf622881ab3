using CsCheck;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.TensorOps;
using FastNotebooks.Verification;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.Reference;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax;

/// <summary>Tests that watch <see cref="FastmaxFunction.SavedShapesObserver"/> run alone: it sees every forward in the process.</summary>
[CollectionDefinition("FastmaxFunction observer", DisableParallelization = true)]
public sealed class FastmaxFunctionObserverCollection;

/// <summary>The custom backward (moments recomputed) against autograd through the dense reference and finite differences.</summary>
[Collection("FastmaxFunction observer")]
public class FastmaxBackwardTests
{
    const int Iterations = 120;

    static (Tensor Dq, Tensor Dk, Tensor Dv) Gradients(Func<Tensor, Tensor, Tensor, Tensor> attention, Tensor q, Tensor k, Tensor v, Tensor weights)
    {
        var (qq, kk, vv) = (q.detach().requires_grad_(), k.detach().requires_grad_(), v.detach().requires_grad_());
        using var loss = (attention(qq, kk, vv) * weights).sum();
        var grads = autograd.grad(new[] { loss }, new[] { qq, kk, vv });
        return (grads[0], grads[1], grads[2]);
    }

    [Fact]
    public void Custom_backward_matches_autograd_through_the_dense_reference()
    {
        KernelCase.CheckWellConditioned(Iterations, ScalarType.Float64, (c, q, k, v) =>
        {
            var weights = randn(c.B, c.H, c.Nq, c.Dv, dtype: ScalarType.Float64);
            var fast = Gradients((a, b, d) => FastmaxFunctional.Attention(a, b, d, c.Options), q, k, v, weights);
            var dense = Gradients((a, b, d) => FastmaxDense.Attention(a, b, d, c.Options), q, k, v, weights);
            double floor = c.ZeroGradientFloor(q, k);
            ErrorReport.Of($"dq ({c})", fast.Dq, dense.Dq).Require(1e-8, absoluteFloor: floor);
            ErrorReport.Of($"dk ({c})", fast.Dk, dense.Dk).Require(1e-8, absoluteFloor: floor);
            ErrorReport.Of($"dv ({c})", fast.Dv, dense.Dv).Require(1e-8, absoluteFloor: 1e-14);
        });
    }

    [Theory]
    [InlineData(false, 2, FastmaxNormalization.MeanCentered)]
    [InlineData(true, 2, FastmaxNormalization.MeanCentered)]
    [InlineData(true, 1, FastmaxNormalization.ZeroCentered)]
    [InlineData(false, 3, FastmaxNormalization.None)]
    public void Custom_backward_matches_finite_differences(bool causal, int order, FastmaxNormalization normalization)
    {
        var options = new FastmaxOptions { Causal = causal, Order = order, Normalization = normalization, ChunkSize = 3 };
        var generator = new Generator(7);
        using var q = randn(new long[] { 1, 2, 5, 3 }, dtype: ScalarType.Float64, generator: generator) * 0.5;
        using var k = randn(new long[] { 1, 2, 7, 3 }, dtype: ScalarType.Float64, generator: generator) * 0.5;
        using var v = randn(new long[] { 1, 2, 7, 2 }, dtype: ScalarType.Float64, generator: generator);
        using var weights = randn(new long[] { 1, 2, 5, 2 }, dtype: ScalarType.Float64, generator: generator);
        Tensor Loss(Tensor a, Tensor b, Tensor d) => (FastmaxFunctional.Attention(a, b, d, options) * weights).sum();

        var analytic = Gradients((a, b, d) => FastmaxFunctional.Attention(a, b, d, options), q, k, v, weights);
        var gradients = new[] { analytic.Dq, analytic.Dk, analytic.Dv };
        for (int which = 0; which < 3; which++)
        {
            using var numeric = FiniteDifferences.Gradient(x => Loss(x[0], x[1], x[2]), new[] { q, k, v }, which);
            ErrorReport.Of($"d{"qkv"[which]} vs finite differences", gradients[which], numeric).Require(1e-6);
        }
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, true)]
    [InlineData(true, false)]
    public void Forward_saves_token_sized_tensors_and_the_key_state(bool causal, bool keepCausalStates)
    {
        const int n = 300, d = 16, dv = 8;
        var saved = new List<long[]>();
        FastmaxFunction.SavedShapesObserver = shapes => saved.AddRange(shapes);
        try
        {
            using var q = randn(1, 2, n, d).requires_grad_();
            using var k = randn(1, 2, n, d).requires_grad_();
            using var v = randn(1, 2, n, dv).requires_grad_();
            using var o = FastmaxFunctional.Attention(q, k, v, new FastmaxOptions { Causal = causal, KeepCausalStates = keepCausalStates });
            o.sum().backward();
        }
        finally { FastmaxFunction.SavedShapesObserver = null; }

        // The kernel's q̂, k̂, v, o, g, each normalization's y, norms, scale, largest token and floor flags (one node,
        // NormalizedFastmaxFunction), and the weighted key state: unmasked [B, H, F, Dv + 1], whose size does not grow with N;
        // causal one [Dv + 1, F] a chunk, [B, H, ⌈N / chunk⌉, Dv + 1, F].
        // Causal without KeepCausalStates, no state: the backward makes the states again.
        Assert.Equal(5 + 2 * MaxNormFunction.SavedCount + (keepCausalStates ? 1 : 0), saved.Count);
        long featureSize = TaylorFeatures.Size(d, 2), chunks = (n + FastmaxChunked.DefaultChunk(2, d) - 1) / FastmaxChunked.DefaultChunk(2, d);
        long tokenSized = 2L * n * Math.Max(d, dv);
        foreach (var shape in saved.Take(saved.Count - (keepCausalStates ? 1 : 0)))
        {
            long elements = shape.Aggregate(1L, (x, y) => x * y);
            Assert.True(elements <= tokenSized, $"saved [{string.Join(", ", shape)}]: {elements} elements; N×F would be {2L * n * featureSize}");
        }
        if (!keepCausalStates) return;
        long[] state = causal ? new[] { 1L, 2, chunks, dv + 1, featureSize } : new[] { 1L, 2, featureSize, dv + 1 };
        Assert.Equal(state, saved[^1]);
    }

    /// <summary>The causal gradients with the forward's key states kept and with the backward making them again: the same bits.</summary>
    [Theory]
    [InlineData(ScalarType.Float32, 32)]
    [InlineData(ScalarType.Float64, 32)]
    [InlineData(ScalarType.Float32, 9)]
    public void Causal_gradients_are_the_same_with_the_key_states_kept_or_made_again(ScalarType dtype, int d)
    {
        var generator = new Generator(43);
        using var scope = NewDisposeScope();
        var inputs = Enumerable.Range(0, 3).Select(_ => randn(new long[] { 2, 2, 300, d }, dtype: dtype, generator: generator)).ToArray();
        var dO = randn(new long[] { 2, 2, 300, d }, dtype: dtype, generator: generator);
        Tensor[] Gradients(bool keep) => LossGradients.Of((x, y, z) => FastmaxFunctional.Attention(x, y, z, new FastmaxOptions { Causal = true, KeepCausalStates = keep }),
            inputs[0], inputs[1], inputs[2], dO);   // [o, dq, dk, dv]
        var (kept, made) = (Gradients(true), Gradients(false));
        for (int i = 1; i < 4; i++)
            Assert.True(kept[i].eq(made[i]).all().item<bool>(), $"d{"qkv"[i - 1]}: {ErrorReport.Of("kept against made again", kept[i], made[i])}");
    }
}
