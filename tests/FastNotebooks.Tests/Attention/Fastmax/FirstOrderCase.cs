using FastNotebooks.Attention.Fastmax;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax;

/// <summary>
/// A random order-1 case in float64: max-normalized q [B, H, Nq, D] and k [B, H, Nk, D], v and dL/do, coefficients with
/// a0 &gt; a1 (every denominator positive, since |s| ≤ 1), input scales 1e-3 to 1e3. The first trials pin the edges:
/// one query, one key (unless <paramref name="extraKeysOnly"/>, where Nk = Nq plus 0–20), D = 1, Dv = 1, then D and Dv multiples of 16,
/// then of 8 but not 16.
/// </summary>
public sealed record FirstOrderCase(Tensor Q, Tensor K, Tensor V, Tensor GradOutput, double[] A, string Name)
{
    public static FirstOrderCase Draw(Random random, Generator generator, int trial, bool causal, bool extraKeysOnly)
    {
        int b = random.Next(1, 3), h = random.Next(1, 3), nq = trial < 3 ? 1 : random.Next(1, 301);
        // Trials 8–12: D and Dv multiples of 16, which the kernels read without padded copies (with and without extra keys).
        // Trials 13–15: multiples of 8 but not of 16, read in place as the causal scans' state rows, padded as their columns
        // (13 and 14 without extra keys, 15 with).
        bool whole = trial is >= 8 and <= 12, eights = trial is >= 13 and <= 15;
        int extraKeys = !extraKeysOnly || trial is 13 or 14 ? 0 : trial == 15 ? random.Next(1, 21) : trial % 3 == 0 ? 0 : random.Next(0, 21);
        int nk = extraKeysOnly ? nq + extraKeys : trial is 3 or 4 ? 1 : random.Next(1, 301);
        int d = trial is 5 or 6 ? 1 : whole ? 16 * ((trial - 8) % 4 + 1) : eights ? 8 + 16 * (trial - 13) : random.Next(1, 71);
        int dv = trial == 7 ? 1 : whole ? (trial % 2 == 0 ? 32 : 16) : eights ? 40 - 16 * (trial - 13) : random.Next(1, 41);
        double a1 = 0.2 + random.NextDouble(), scale = Math.Pow(10, random.Next(-3, 4));
        var a = new[] { a1 + 0.1 + random.NextDouble(), a1 };
        Tensor Normalized(long n) =>
            MaxNormFunction.Apply(randn(new long[] { b, h, n, d }, dtype: ScalarType.Float64, generator: generator) * scale, centre: true, causal: causal, KernelPlan.TensorOps);
        var (q, k) = (Normalized(nq), Normalized(nk));
        var v = randn(new long[] { b, h, nk, dv }, dtype: ScalarType.Float64, generator: generator);
        var gradOutput = randn(new long[] { b, h, nq, dv }, dtype: ScalarType.Float64, generator: generator);
        return new FirstOrderCase(q, k, v, gradOutput, a, $"B={b} H={h} Nq={nq} Nk={nk} D={d} Dv={dv} a=[{a[0]:F2}, {a[1]:F2}] scale={scale:g1}");
    }

    /// <summary>q, k, v and dL/do in float32.</summary>
    public (Tensor Q, Tensor K, Tensor V, Tensor GradOutput) Float32() =>
        (Q.to(ScalarType.Float32), K.to(ScalarType.Float32), V.to(ScalarType.Float32), GradOutput.to(ScalarType.Float32));
}
