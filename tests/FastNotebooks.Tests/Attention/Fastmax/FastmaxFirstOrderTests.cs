using System.Runtime.Intrinsics;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Verification;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax;

/// <summary>The fused order-1 forward and backward (float32 on the tiles) against the tensor-op form they replace, run in float64.</summary>
public class FastmaxFirstOrderTests
{
    /// <summary>
    /// o, g, the key state and dq, dk, dv over 60 random cases (<see cref="FirstOrderCase"/>): 1–2 batches and heads, 1–300
    /// queries and keys (Nq ≠ Nk), D 1–70, Dv 1–40.
    /// </summary>
    [SkippableFact]
    public void Fused_kernel_matches_the_tensor_op_form()
    {
        Skip.IfNot(Vector512.IsHardwareAccelerated, "no AVX-512 on this CPU: float32 takes the tensor-op form too");
        var random = new Random(8);
        var generator = new Generator(9);
        for (int trial = 0; trial < 60; trial++)
        {
            using var scope = NewDisposeScope();
            var c = FirstOrderCase.Draw(random, generator, trial, causal: false, extraKeysOnly: false);
            var (q, k, v, gradOutput, a, name) = c;

            var expected = FastmaxFirstOrder.Forward(q, k, v, a);
            var (q32, k32, v32, dO32) = c.Float32();
            var actual = FastmaxFirstOrder.Forward(q32, k32, v32, a);
            ErrorReport.Of($"o ({name})", actual.Output, expected.Output).Require(1e-5);
            ErrorReport.Of($"g ({name})", actual.Denominator, expected.Denominator).Require(1e-5);
            ErrorReport.Of($"key state ({name})", actual.KeyState, expected.KeyState).Require(1e-5);

            var expectedGrads = FastmaxFirstOrder.Backward(q, k, v, expected.Output, expected.Denominator, gradOutput, a, expected.KeyState);
            var grads = FastmaxFirstOrder.Backward(q32, k32, v32, actual.Output, actual.Denominator, dO32, a, actual.KeyState);
            // dq vanishes in exact arithmetic with one key (o = v whatever q is): roundoff is left there.
            ErrorReport.Of($"dq ({name})", grads.Dq, expectedGrads.Dq).Require(1e-4, absoluteFloor: 1e-5);
            ErrorReport.Of($"dk ({name})", grads.Dk, expectedGrads.Dk).Require(1e-4, absoluteFloor: 1e-5);
            ErrorReport.Of($"dv ({name})", grads.Dv, expectedGrads.Dv).Require(1e-4);
        }
    }
}
