using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Bounds;

/// <summary>Which inputs a bound measurement draws.</summary>
public enum BoundInputKind
{
    /// <summary>q, k ~ scale·N(0, 1), v ~ N(0, 1).</summary>
    Gaussian,
    /// <summary>
    /// Every s near −1, where p = 1's f vanishes: keys ≈ scale·u, queries ≈ −scale·u for a unit vector u with zero
    /// mean (alternating ±1/√D, so mean-centering keeps it), plus relative noise; v ~ N(0, 1).
    /// </summary>
    Adversarial,
}

/// <summary>Reproducible float64 inputs q [N, D], k [N, D], v [N, Dv] for the bound measurements.</summary>
public static class BoundInputs
{
    /// <summary>Draws the inputs of one measurement.</summary>
    /// <param name="kind">Gaussian or adversarial (s near −1).</param>
    /// <param name="n">Tokens N (queries and keys).</param>
    /// <param name="d">Head size D of q and k; even, so the adversarial direction u has zero mean.</param>
    /// <param name="dv">Value size Dv.</param>
    /// <param name="scale">Multiplies q and k.</param>
    /// <param name="noise">Relative noise around ±u in the adversarial inputs (ignored for gaussian); smaller brings s closer to −1.</param>
    /// <param name="seed">Seed of the generator.</param>
    public static (Tensor Q, Tensor K, Tensor V) Draw(BoundInputKind kind, int n, int d, int dv, double scale, double noise, long seed)
    {
        if (d % 2 != 0) throw new ArgumentException($"D must be even (u alternates ±1/√D); got {d}.", nameof(d));
        var generator = new Generator((ulong)seed);
        using var scope = NewDisposeScope();
        var q = randn(new long[] { n, d }, dtype: ScalarType.Float64, generator: generator);
        var k = randn(new long[] { n, d }, dtype: ScalarType.Float64, generator: generator);
        var v = randn(new long[] { n, dv }, dtype: ScalarType.Float64, generator: generator);
        if (kind == BoundInputKind.Adversarial)
        {
            var u = tensor(Enumerable.Range(0, d).Select(m => (m % 2 == 0 ? 1.0 : -1.0) / Math.Sqrt(d)).ToArray(), dtype: ScalarType.Float64);
            q = -u + noise * q; // [N, D]
            k = u + noise * k;  // [N, D]
        }
        return ((q * scale).MoveToOuterDisposeScope(), (k * scale).MoveToOuterDisposeScope(), v.MoveToOuterDisposeScope());
    }
}
