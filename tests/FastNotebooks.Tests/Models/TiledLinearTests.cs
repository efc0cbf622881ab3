using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Models;
using FastNotebooks.Tests.Attention.Fastmax.Cpu;
using FastNotebooks.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Models;

/// <summary>The models' linear layers on the AVX-512 tiles against the same layer's products in float64.</summary>
public class TiledLinearTests
{
    /// <summary>
    /// y, dx, dW and db over 40 random float32 cases (64–300 rows as [M, in] or [B, N, in], in and out 1–200, either larger)
    /// against float64 autograd of x·Wᵀ + b; every product runs on the tiles (none is handed to libtorch).
    /// </summary>
    [Avx512Fact]
    public void Tiles_match_the_layer_in_float64()
    {
        var random = new Random(21);
        for (int trial = 0; trial < 40; trial++)
        {
            using var scope = NewDisposeScope();
            int inputs = random.Next(1, 201), outputs = random.Next(1, 201), rows = random.Next(TiledLinear.MinimumRows, 301);
            long[] shape = trial % 2 == 0 ? new long[] { rows, inputs } : new long[] { 2, (rows + 1) / 2, inputs };
            var layer = nn.Linear(inputs, outputs);
            var x = randn(shape).requires_grad_();
            var weights = randn(shape[..^1].Append(outputs).ToArray());
            string name = $"trial {trial}: x [{string.Join(", ", shape)}], W [{outputs}, {inputs}]";
            Assert.True(TiledLinear.Applies(layer, x), name);

            var fallbacks = 0;
            SimdGemm.FallbackObserver = (_, _) => fallbacks++;
            Tensor y;
            IList<Tensor> grads;
            try
            {
                y = TiledLinear.Apply(layer, x);
                grads = autograd.grad(new[] { (y * weights).sum() }, new[] { x, layer.weight!, layer.bias! });
            }
            finally { SimdGemm.FallbackObserver = null; }
            Assert.True(fallbacks == 0, $"{name}: {fallbacks} products went to libtorch");

            var x64 = x.detach().to_type(ScalarType.Float64).requires_grad_();
            var w64 = layer.weight!.detach().to_type(ScalarType.Float64).requires_grad_();
            var b64 = layer.bias!.detach().to_type(ScalarType.Float64).requires_grad_();
            var y64 = nn.functional.linear(x64, w64, b64);
            var expected = autograd.grad(new[] { (y64 * weights.to_type(ScalarType.Float64)).sum() }, new[] { x64, w64, b64 });
            ErrorReport.Of($"y ({name})", y.detach(), y64.detach()).Require(1e-5);
            ErrorReport.Of($"dx ({name})", grads[0], expected[0]).Require(1e-5);
            ErrorReport.Of($"dW ({name})", grads[1], expected[1]).Require(1e-5);
            ErrorReport.Of($"db ({name})", grads[2], expected[2]).Require(1e-5);

            using (no_grad())
                ErrorReport.Of($"y without a graph ({name})", TiledLinear.Apply(layer, x), y64.detach()).Require(1e-5);
        }
    }

    /// <summary>Where the tiles do not apply (a few rows, float64, no bias) the layer's own forward runs: the same bits.</summary>
    [Fact]
    public void Elsewhere_the_layer_runs_itself()
    {
        using var scope = NewDisposeScope();
        var layer = nn.Linear(40, 24);
        var few = randn(TiledLinear.MinimumRows - 1, 40);
        Assert.False(TiledLinear.Applies(layer, few));
        Assert.True(TiledLinear.Apply(layer, few).eq(layer.forward(few)).all().item<bool>());

        var layer64 = nn.Linear(40, 24, dtype: ScalarType.Float64);
        var many64 = randn(new long[] { 300, 40 }, dtype: ScalarType.Float64);
        Assert.False(TiledLinear.Applies(layer64, many64));
        Assert.True(TiledLinear.Apply(layer64, many64).eq(layer64.forward(many64)).all().item<bool>());

        var noBias = nn.Linear(40, 24, hasBias: false);
        var many = randn(300, 40);
        Assert.False(TiledLinear.Applies(noBias, many));
        Assert.True(TiledLinear.Apply(noBias, many).eq(noBias.forward(many)).all().item<bool>());
    }
}
