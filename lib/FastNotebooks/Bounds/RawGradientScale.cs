using static TorchSharp.torch;

namespace FastNotebooks.Bounds;

/// <summary>One input scale: gradient norms of L = Σ o ⊙ w with respect to the raw q, k and to the normalized q̂.</summary>
/// <param name="Scale">Multiplies q and k.</param>
/// <param name="GradQ">‖∂L/∂q‖ (Frobenius), q the raw queries.</param>
/// <param name="GradK">‖∂L/∂k‖.</param>
/// <param name="GradQHat">‖∂L/∂q̂‖, q̂ the normalized queries the bound is stated for.</param>
public sealed record RawGradientPoint(double Scale, double GradQ, double GradK, double GradQHat);

/// <summary>
/// The gradient bound of <see cref="BoundConstants"/> is about derivatives with respect to q̂, k̂ and s. Normalization
/// makes q̂ invariant to rescaling q, so ∂q̂/∂q — and with it the gradient with respect to the raw q, k — scales like
/// 1/scale: this measures both, in float64 autograd, on the same draw at every scale.
/// </summary>
public static class RawGradientScale
{
    /// <summary>Gradient norms at each scale for one draw of q, k [N, D] ~ N(0, 1), v [N, D] and weights w.</summary>
    public static IReadOnlyList<RawGradientPoint> Measure(BoundMechanism mechanism, IEnumerable<double> scales, int n = 32, int d = 16, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(mechanism);
        if (mechanism.IsSoftmax) throw new ArgumentException("the raw-gradient scaling is a Fastmax statement; got softmax.", nameof(mechanism));
        if (n < 2 || d < 1) throw new ArgumentException($"need n ≥ 2 and d ≥ 1; got n {n}, d {d}.", nameof(n));
        var points = new List<RawGradientPoint>();
        var (q0, k0, v) = BoundInputs.Draw(BoundInputKind.Gaussian, n, d, d, 1.0, 0, seed);
        var w = randn(n, d, dtype: float64, generator: new TorchSharp.torch.Generator((ulong)seed + 1));
        foreach (var scale in scales)
        {
            if (!(scale > 0) || !double.IsFinite(scale)) throw new ArgumentException($"scales must be positive and finite; got {scale}.", nameof(scales));
            using var scope = NewDisposeScope();
            var q = (q0 * scale).detach().requires_grad_();
            var k = (k0 * scale).detach().requires_grad_();
            var qHat = mechanism.Normalize(q);
            var s = qHat.matmul(mechanism.Normalize(k).t());
            var loss = (mechanism.Scores(s).matmul(v) * w).sum();
            var grads = autograd.grad(new[] { loss }, new[] { q, k, qHat });
            points.Add(new RawGradientPoint(scale, grads[0].norm().item<double>(), grads[1].norm().item<double>(), grads[2].norm().item<double>()));
        }
        return points;
    }

    /// <summary>Least-squares slope of log y on log x (−1 for y ∝ 1/x).</summary>
    public static double LogLogSlope(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        if (x.Count != y.Count || x.Count < 2) throw new ArgumentException($"need two or more (x, y) pairs; got {x.Count} and {y.Count}.", nameof(x));
        var lx = x.Select(v => Math.Log(v)).ToArray();
        var ly = y.Select(v => Math.Log(v)).ToArray();
        double mx = lx.Average(), my = ly.Average();
        return lx.Zip(ly).Sum(p => (p.First - mx) * (p.Second - my)) / lx.Sum(a => (a - mx) * (a - mx));
    }
}
