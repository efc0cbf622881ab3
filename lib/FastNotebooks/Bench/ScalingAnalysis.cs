namespace FastNotebooks.Bench;

/// <summary>The log-log slope of time against N for one (implementation, pass, D): ≈ 1 for linear cost, ≈ 2 for quadratic.</summary>
/// <param name="Implementation">The kernel.</param>
/// <param name="Pass">Forward, or forward + backward.</param>
/// <param name="D">Head size.</param>
/// <param name="Slope">Least-squares slope of log time on log N.</param>
/// <param name="RSquared">Fraction of the variance of log time the line explains.</param>
/// <param name="Points">Measured points in the fit.</param>
/// <param name="FromN">Smallest N in the fit.</param>
/// <param name="ToN">Largest N in the fit.</param>
public sealed record ScalingFit(ScalingImplementation Implementation, ScalingPass Pass, int D, double Slope, double RSquared, int Points, int FromN, int ToN);

/// <summary>Where one Fastmax order overtakes softmax for one (pass, D).</summary>
/// <param name="Fastmax">The Fastmax order compared with softmax.</param>
/// <param name="Pass">Forward, or forward + backward.</param>
/// <param name="D">Head size.</param>
/// <param name="N">Smallest measured N from which Fastmax is faster at every larger N where both ran; null if it never is.</param>
/// <param name="LargestCommonN">Largest N where both ran.</param>
/// <param name="SpeedupAtLargestCommonN">Softmax time over Fastmax time there (above 1: Fastmax is faster).</param>
public sealed record Crossover(ScalingImplementation Fastmax, ScalingPass Pass, int D, int? N, int LargestCommonN, double SpeedupAtLargestCommonN);

/// <summary>Achieved forward GFLOP/s of one implementation at its largest measured N, as a fraction of a same-run GEMM.</summary>
public sealed record RooflineFraction(ScalingImplementation Implementation, int D, int N, double Gflops, double GemmGflops, double Fraction);

/// <summary>What follows from the points of a sweep: slopes, crossovers, roofline fractions. Pure functions, no timing.</summary>
public static class ScalingAnalysis
{
    /// <summary>
    /// Least-squares slope (and R²) of log y on log x. Exact power laws y = c·xᵃ give a exactly (to rounding).
    /// </summary>
    /// <param name="points">At least two points with positive x and y and not all x equal.</param>
    public static (double Slope, double RSquared) LogLogSlope(IReadOnlyList<(double X, double Y)> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        if (points.Count < 2) throw new ArgumentException($"a slope needs at least two points; got {points.Count}.", nameof(points));
        if (points.Any(p => !(p.X > 0) || !(p.Y > 0) || double.IsInfinity(p.X) || double.IsInfinity(p.Y)))
            throw new ArgumentException("log-log fitting needs finite, positive x and y.", nameof(points));
        var x = points.Select(p => Math.Log(p.X)).ToArray();
        var y = points.Select(p => Math.Log(p.Y)).ToArray();
        double mx = x.Average(), my = y.Average();
        double sxx = x.Sum(xi => (xi - mx) * (xi - mx));
        if (sxx == 0) throw new ArgumentException("all x are equal; the slope is undefined.", nameof(points));
        double sxy = x.Zip(y).Sum(p => (p.First - mx) * (p.Second - my));
        double syy = y.Sum(yi => (yi - my) * (yi - my));
        double slope = sxy / sxx;
        // A constant y is fitted perfectly by slope 0.
        double rSquared = syy == 0 ? 1 : sxy * sxy / (sxx * syy);
        return (slope, rSquared);
    }

    /// <summary>
    /// One fit per (implementation, pass, D) over the larger half of its measured lengths (at least two), where per-call
    /// overhead no longer hides the asymptotic cost; groups with fewer than two measured points get no fit.
    /// </summary>
    public static List<ScalingFit> FitSlopes(IEnumerable<ScalingPoint> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        var fits = new List<ScalingFit>();
        foreach (var group in Measured(points).GroupBy(p => (p.Implementation, p.Pass, p.D)))
        {
            var ordered = group.OrderBy(p => p.N).ToList();
            if (ordered.Count < 2) continue;
            var used = ordered.Skip(ordered.Count - Math.Max(2, (ordered.Count + 1) / 2)).ToList();
            var (slope, r2) = LogLogSlope(used.Select(p => ((double)p.N, p.Milliseconds!.Value)).ToList());
            fits.Add(new ScalingFit(group.Key.Implementation, group.Key.Pass, group.Key.D, slope, r2, used.Count, used[0].N, used[^1].N));
        }
        return fits;
    }

    /// <summary>
    /// For each Fastmax order, pass and D with softmax measured at some common N: the smallest N from which Fastmax stays
    /// faster. "Stays" guards against a single noisy win at small N being read as the crossover.
    /// </summary>
    public static List<Crossover> FindCrossovers(IEnumerable<ScalingPoint> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        var measured = Measured(points).ToList();
        var crossovers = new List<Crossover>();
        foreach (var group in measured.Where(p => p.Implementation != ScalingImplementation.Softmax).GroupBy(p => (p.Implementation, p.Pass, p.D)))
        {
            var softmax = measured.Where(p => p.Implementation == ScalingImplementation.Softmax && p.Pass == group.Key.Pass && p.D == group.Key.D)
                .ToDictionary(p => p.N, p => p.Milliseconds!.Value);
            var pairs = group.Where(p => softmax.ContainsKey(p.N)).OrderBy(p => p.N)
                .Select(p => (p.N, Speedup: softmax[p.N] / p.Milliseconds!.Value)).ToList();
            if (pairs.Count == 0) continue;
            int? crossover = null;
            for (int i = pairs.Count - 1; i >= 0 && pairs[i].Speedup > 1; i--) crossover = pairs[i].N;
            crossovers.Add(new Crossover(group.Key.Implementation, group.Key.Pass, group.Key.D, crossover, pairs[^1].N, pairs[^1].Speedup));
        }
        return crossovers;
    }

    /// <summary>For each Fastmax order and D, the forward GFLOP/s at the largest measured N against <paramref name="gemmGflops"/>.</summary>
    public static List<RooflineFraction> RooflineFractions(IEnumerable<ScalingPoint> points, double gemmGflops)
    {
        ArgumentNullException.ThrowIfNull(points);
        if (!(gemmGflops > 0)) throw new ArgumentException($"the GEMM rate must be positive; got {gemmGflops}.", nameof(gemmGflops));
        return Measured(points)
            .Where(p => p.Implementation != ScalingImplementation.Softmax && p.Pass == ScalingPass.Forward && p.Gflops is not null)
            .GroupBy(p => (p.Implementation, p.D))
            .Select(g => g.MaxBy(p => p.N)!)
            .Select(p => new RooflineFraction(p.Implementation, p.D, p.N, p.Gflops!.Value, gemmGflops, p.Gflops!.Value / gemmGflops))
            .ToList();
    }

    static IEnumerable<ScalingPoint> Measured(IEnumerable<ScalingPoint> points) =>
        points.Where(p => !p.OverBudget && p.Milliseconds is > 0);
}
