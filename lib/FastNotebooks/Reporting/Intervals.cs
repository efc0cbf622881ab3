namespace FastNotebooks.Reporting;

/// <summary>An estimate with its 95 % confidence interval.</summary>
public sealed record Interval(double Estimate, double Low, double High)
{
    public bool Contains(double x) => Low <= x && x <= High;

    public override string ToString() => $"{Estimate:P1} [{Low:P1}, {High:P1}]";
}

/// <summary>Confidence intervals for the accuracies the experiments report.</summary>
public static class Intervals
{
    /// <summary>z of a two-sided 95 % interval.</summary>
    public const double Z95 = 1.959963984540054;

    /// <summary>
    /// Wilson's 95 % score interval for a proportion: <paramref name="correct"/> of <paramref name="total"/> test items
    /// right. Unlike the normal approximation it stays inside [0, 1] and is fair near 0 and 1 and for small test sets.
    /// </summary>
    public static Interval Wilson(long correct, long total)
    {
        if (total < 1) throw new ArgumentOutOfRangeException(nameof(total), total, "needs at least one test item.");
        if (correct < 0 || correct > total) throw new ArgumentOutOfRangeException(nameof(correct), correct, $"must be in [0, {total}].");
        double n = total, p = correct / n, z2 = Z95 * Z95;
        double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
        double half = Z95 * Math.Sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n);
        return new Interval(p, Math.Max(0, centre - half), Math.Min(1, centre + half));
    }

    /// <summary>Wilson's interval from an accuracy measured on <paramref name="total"/> items.</summary>
    public static Interval Wilson(double accuracy, long total) => Wilson((long)Math.Round(accuracy * total), total);
}
