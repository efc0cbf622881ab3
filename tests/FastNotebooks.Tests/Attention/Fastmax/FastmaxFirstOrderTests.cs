using System.Runtime.Intrinsics;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax;

/// <summary>The fused order-1 forward and backward (float32 on the tiles) against the tensor-op form they replace, run in float64.</summary>
public class FastmaxFirstOrderTests
{
    /// <summary>
    /// o, g, the key state and dq, dk, dv over 60 random cases: 1–2 batches and heads, 1–300 queries and keys (Nq ≠ Nk), D 1–70,
    /// Dv 1–40, coefficients with a0 &gt; a1 on max-normalized inputs (every denominator positive), scales 1e-3 to 1e3.
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
            int b = random.Next(1, 3), h = random.Next(1, 3), nq = trial < 3 ? 1 : random.Next(1, 301), nk = trial is 3 or 4 ? 1 : random.Next(1, 301);
            int d = trial is 5 or 6 ? 1 : random.Next(1, 71), dv = trial == 7 ? 1 : random.Next(1, 41);
            double a1 = 0.2 + random.NextDouble(), scale = Math.Pow(10, random.Next(-3, 4));
            var a = new[] { a1 + 0.1 + random.NextDouble(), a1 };
            Tensor Normalized(long n, int width) =>
                MaxNormFunction.Apply(randn(new long[] { b, h, n, width }, dtype: ScalarType.Float64, generator: generator) * scale, centre: true, causal: false);
            var (q, k) = (Normalized(nq, d), Normalized(nk, d));
            var v = randn(new long[] { b, h, nk, dv }, dtype: ScalarType.Float64, generator: generator);
            var gradOutput = randn(new long[] { b, h, nq, dv }, dtype: ScalarType.Float64, generator: generator);
            string name = $"B={b} H={h} Nq={nq} Nk={nk} D={d} Dv={dv} a=[{a[0]:F2}, {a[1]:F2}] scale={scale:g1}";

            var expected = FastmaxFirstOrder.Forward(q, k, v, a);
            var (q32, k32, v32) = (q.to(ScalarType.Float32), k.to(ScalarType.Float32), v.to(ScalarType.Float32));
            var actual = FastmaxFirstOrder.Forward(q32, k32, v32, a);
            ErrorReport.Of($"o ({name})", actual.Output, expected.Output).Require(1e-5);
            ErrorReport.Of($"g ({name})", actual.Denominator, expected.Denominator).Require(1e-5);
            ErrorReport.Of($"key state ({name})", actual.KeyState, expected.KeyState).Require(1e-5);

            var expectedGrads = FastmaxFirstOrder.Backward(q, k, v, expected.Output, expected.Denominator, gradOutput, a, expected.KeyState);
            var grads = FastmaxFirstOrder.Backward(q32, k32, v32, actual.Output, actual.Denominator, gradOutput.to(ScalarType.Float32), a, actual.KeyState);
            // dq vanishes in exact arithmetic with one key (o = v whatever q is): roundoff is left there.
            ErrorReport.Of($"dq ({name})", grads.Dq, expectedGrads.Dq).Require(1e-4, absoluteFloor: 1e-5);
            ErrorReport.Of($"dk ({name})", grads.Dk, expectedGrads.Dk).Require(1e-4, absoluteFloor: 1e-5);
            ErrorReport.Of($"dv ({name})", grads.Dv, expectedGrads.Dv).Require(1e-4);
        }
    }
}
