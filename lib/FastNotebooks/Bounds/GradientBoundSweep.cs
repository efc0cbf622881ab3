using FastNotebooks.Verification;
using static TorchSharp.torch;

namespace FastNotebooks.Bounds;

/// <summary>
/// Measures the Fastmax gradient bound (<see cref="BoundConstants"/>) with float64 autograd Jacobians over token
/// counts, input scales, input kinds and mechanisms, and summarizes the maxima per mechanism.
/// Cost per case O(N³) for ∂a/∂s (N backward passes over N×N), so N in the hundreds stays cheap on a CPU.
/// </summary>
/// <param name="d">Head size D (default 16; even, for the adversarial direction).</param>
/// <param name="dv">Value size Dv (default 8: Dv backward passes per case for ∂o/∂q̂).</param>
/// <param name="adversarialNoise">Relative noise of the adversarial inputs (default 1e-3: s within about 1e-3 of −1).</param>
/// <param name="seed">Seed of every draw (default 0); each case's seed is derived from it, N and the scale.</param>
public sealed class GradientBoundSweep(int d = 16, int dv = 8, double adversarialNoise = 1e-3, long seed = 0)
{
    /// <summary>Token counts of a cheap default sweep; pass more (e.g. 512, 1024) for a longer one.</summary>
    public static IReadOnlyList<int> DefaultNs { get; } = new[] { 8, 32, 128, 256 };

    /// <summary>
    /// Input scales: tiny, unit, large (the bound on derivatives with respect to q̂, k̂ and s does not depend on the
    /// scale; the gradient with respect to the raw q, k does, see README.md), plus 0.06, where for D = 16 the
    /// largest squared token norm sits near the squared-norm floor 0.1 and that variant's |s| peaks (up to 10).
    /// </summary>
    public static IReadOnlyList<double> DefaultScales { get; } = new[] { 1e-3, 0.06, 1.0, 1e3 };

    public static IReadOnlyList<BoundInputKind> AllKinds { get; } = new[] { BoundInputKind.Gaussian, BoundInputKind.Adversarial };

    /// <summary>Every combination, mechanisms innermost (so all mechanisms see the same inputs).</summary>
    /// <param name="ns">Token counts; null means <see cref="DefaultNs"/>.</param>
    /// <param name="scales">Input scales; null means <see cref="DefaultScales"/>.</param>
    /// <param name="kinds">Input kinds; null means both.</param>
    /// <param name="mechanisms">Mechanisms; null means <see cref="BoundMechanism.All"/>.</param>
    public IReadOnlyList<BoundMeasurement> Run(IEnumerable<int>? ns = null, IEnumerable<double>? scales = null,
        IEnumerable<BoundInputKind>? kinds = null, IEnumerable<BoundMechanism>? mechanisms = null)
    {
        var results = new List<BoundMeasurement>();
        var mechanismList = (mechanisms ?? BoundMechanism.All).ToList();
        foreach (var n in ns ?? DefaultNs)
            foreach (var scale in scales ?? DefaultScales)
                foreach (var kind in kinds ?? AllKinds)
                    foreach (var mechanism in mechanismList)
                        results.Add(Measure(mechanism, n, scale, kind));
        return results;
    }

    /// <summary>One case: draws q, k, v, then measures max|s|, N·max|∂a/∂s| (diagonal), N²·max (off-diagonal) and the output ratio.</summary>
    /// <param name="mechanism">The attention mechanism.</param>
    /// <param name="n">Tokens N.</param>
    /// <param name="scale">Multiplies q and k.</param>
    /// <param name="kind">Gaussian or adversarial inputs.</param>
    public BoundMeasurement Measure(BoundMechanism mechanism, int n, double scale, BoundInputKind kind)
    {
        using var scope = NewDisposeScope();
        // Deterministic across processes (HashCode.Combine is randomized per process).
        long caseSeed = Math.Abs(unchecked(seed * 1_000_003L + n * 10_007L + (long)kind * 101L + BitConverter.DoubleToInt64Bits(scale) % 100_003L));
        var (q, k, v) = BoundInputs.Draw(kind, n, d, dv, scale, adversarialNoise, caseSeed);
        var qHat = mechanism.Normalize(q);
        var kHat = mechanism.Normalize(k);
        var s = qHat.matmul(kHat.t()); // [N, N]
        var (diagonal, offDiagonal) = ScoreJacobian.Maxima(s, mechanism.Scores);
        double ratio = OutputJacobian.Ratio(qHat, kHat, v, mechanism.Scores);
        return new BoundMeasurement(mechanism.Name, mechanism.NormalizationLabel, n, scale, kind.ToString().ToLowerInvariant(),
            s.abs().max().item<double>(), (double)n * diagonal, (double)n * n * offDiagonal, ratio);
    }

    /// <summary>
    /// Maxima over the measurements of each mechanism (grouped by name and normalization), in first-seen order. A NaN
    /// measurement makes its maximum NaN (and the row not within bounds) instead of being skipped.
    /// </summary>
    /// <param name="measurements">Rows from <see cref="Run"/>.</param>
    public static IReadOnlyList<BoundSummary> Summary(IEnumerable<BoundMeasurement> measurements) =>
        measurements.GroupBy(m => (m.Mechanism, m.Normalization))
            .Select(g => new BoundSummary(g.Key.Mechanism, g.Key.Normalization, g.Count(),
                KernelErrorSweep.MaxOf(g.Select(m => m.MaxAbsS)), KernelErrorSweep.MaxOf(g.Select(m => m.DiagonalScaled)),
                KernelErrorSweep.MaxOf(g.Select(m => m.OffDiagonalScaled)), KernelErrorSweep.MaxOf(g.Select(m => m.OutputJacobianRatio))))
            .ToList();
}
