using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Verification;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>The order-1 CPU kernel (float32 on the tiles) against the tensor-op form it replaces, run in float64.</summary>
public class FirstOrderTilesTests
{
    /// <summary>
    /// o, g, the key state and dq, dk, dv over 60 random cases (<see cref="FirstOrderCase"/>): 1–2 batches and heads, 1–300
    /// queries and keys (Nq ≠ Nk), D 1–70, Dv 1–40.
    /// </summary>
    [Avx512Fact]
    public void Tiles_match_the_tensor_op_form()
    {
        var random = new Random(8);
        var generator = new Generator(9);
        for (int trial = 0; trial < 60; trial++)
        {
            using var scope = NewDisposeScope();
            var c = FirstOrderCase.Draw(random, generator, trial, causal: false, extraKeysOnly: false);
            var (q, k, v, gradOutput, a, name) = c;

            var expected = FastmaxFirstOrder.Forward(q, k, v, a);
            var (q32, k32, v32, dO32) = c.Float32();
            Assert.True(FirstOrderTiles.Supports(q32, k32, v32), name);
            var actual = FirstOrderTiles.Forward(q32, k32, v32, a);
            ErrorReport.Of($"o ({name})", actual.Output, expected.Output).Require(1e-5);
            ErrorReport.Of($"g ({name})", actual.Denominator, expected.Denominator).Require(1e-5);
            ErrorReport.Of($"key state ({name})", actual.KeyState, expected.KeyState).Require(1e-5);

            var expectedGrads = FastmaxFirstOrder.Backward(q, k, v, expected.Output, expected.Denominator, gradOutput, a, expected.KeyState);
            var grads = FirstOrderTiles.Backward(q32, k32, v32, actual.Output, actual.Denominator, dO32, a, actual.KeyState);
            // dq vanishes in exact arithmetic with one key (o = v whatever q is): roundoff is left there.
            ErrorReport.Of($"dq ({name})", grads.Dq, expectedGrads.Dq).Require(1e-4, absoluteFloor: 1e-5);
            ErrorReport.Of($"dk ({name})", grads.Dk, expectedGrads.Dk).Require(1e-4, absoluteFloor: 1e-5);
            ErrorReport.Of($"dv ({name})", grads.Dv, expectedGrads.Dv).Require(1e-4);
        }
    }
}
