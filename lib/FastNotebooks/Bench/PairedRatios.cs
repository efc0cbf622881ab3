namespace FastNotebooks.Bench;

/// <summary>
/// Ratios of paired timings, one pair per round (after / before, the two measured one right after the other), summarised by
/// their median and the distribution-free 95 % interval of a median: the order statistics of ranks k and n + 1 − k with
/// k = ⌊n/2 − 0.98·√n⌋ (at least 1; the normal approximation to the binomial count of ratios below the median). A slow spell
/// of a shared machine falls on both members of a pair and cancels in the ratio, which the fastest of each side's repeats
/// cannot do: it moves with whichever side happened to meet the quietest moment.
/// </summary>
public sealed record PairedRatios(int Count, double Median, double Lower, double Upper)
{
    public static PairedRatios Of(IReadOnlyList<double> ratios)
    {
        if (ratios.Count == 0) throw new ArgumentException("at least one ratio is needed", nameof(ratios));
        foreach (double r in ratios)
            if (!double.IsFinite(r) || r <= 0) throw new ArgumentException($"ratios must be finite and positive; got {r}", nameof(ratios));
        var sorted = ratios.Order().ToArray();
        int n = sorted.Length, k = Math.Max(1, (int)Math.Floor(n / 2.0 - 0.98 * Math.Sqrt(n)));
        double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        return new PairedRatios(n, median, sorted[k - 1], sorted[n - k]);
    }

    /// <summary>"+1.2 % [−0.8, +3.0]": the median change and its interval in percent.</summary>
    public override string ToString() => $"{Percent(Median)} % [{Percent(Lower)}, {Percent(Upper)}]";

    /// <summary>A ratio as a signed change in percent, one decimal: 1.012 → "+1.2".</summary>
    public static string Percent(double ratio) => (100 * (ratio - 1)).ToString("+0.0;−0.0;0.0", System.Globalization.CultureInfo.InvariantCulture);
}
