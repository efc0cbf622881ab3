using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Bench;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Bench;

/// <summary>The bench's forward + backward: autograd given dL/do, the gradients of the loss Σ o ⊙ dL/do without forming it.</summary>
public class ForwardBackwardTests
{
    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    public void The_gradients_are_those_of_the_loss_it_does_not_form(int order, bool causal)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(3);
        var shape = new long[] { 2, 3, 40, 8 };
        var inputs = Enumerable.Range(0, 3).Select(_ => randn(shape, dtype: ScalarType.Float64, generator: generator)).ToArray();
        var outputGradient = randn(shape, dtype: ScalarType.Float64, generator: generator);
        var options = new FastmaxOptions { Order = order, Causal = causal };
        Tensor Attention(Tensor q, Tensor k, Tensor v) => FastmaxFunctional.Attention(q, k, v, options);
        var leaves = inputs.Select(t => t.detach().requires_grad_()).ToArray();
        var viaLoss = autograd.grad(new[] { (Attention(leaves[0], leaves[1], leaves[2]) * outputGradient).sum() }, leaves);
        var given = ForwardBackward.Gradients(Attention, inputs.Select(t => t.detach().requires_grad_()).ToArray(), outputGradient);
        Assert.Equal(3, given.Length);
        for (int i = 0; i < 3; i++)
            Assert.True(given[i].allclose(viaLoss[i], rtol: 1e-12, atol: 1e-14), $"gradient {i} differs");
        Assert.True(given[0].abs().max().item<double>() > 0);
    }

    [Fact]
    public void Bad_input_names_the_argument()
    {
        using var scope = NewDisposeScope();
        Tensor Attention(Tensor q, Tensor k, Tensor v) => FastmaxFunctional.Attention(q, k, v);
        var leaves = Enumerable.Range(0, 3).Select(_ => randn(1, 1, 10, 4).requires_grad_()).ToArray();
        var error = Assert.Throws<ArgumentException>(() => ForwardBackward.Gradients(Attention, leaves.Take(2).ToArray(), randn(1, 1, 10, 4)));
        Assert.Equal("leaves", error.ParamName);
        error = Assert.Throws<ArgumentException>(() => ForwardBackward.Gradients(Attention, leaves, randn(1, 1, 9, 4)));
        Assert.Equal("outputGradient", error.ParamName);
        Assert.Contains("[1, 1, 9, 4]", error.Message);
    }
}
