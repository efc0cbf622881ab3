using System.Globalization;

namespace FastNotebooks.Reporting;

/// <summary>
/// A fact a notebook states about the code, checked where it is stated: when the measured value breaks its threshold
/// (NaN and ±∞ always do, unless the fact is about infinities) the check throws <see cref="CheckFailedException"/>
/// naming the fact, the value and the threshold, so the cell fails, <c>run</c> exits 1 and the smoke tests fail.
/// Use it for what does not depend on the machine's speed (errors below tolerance, bounds within their premise, values
/// finite, shapes and counts as derived). The paper's empirical claims are not facts of the code: they get a recorded
/// <see cref="Verdict"/> (see <see cref="RunRecord.Claim"/>) and may honestly come out "does not hold".
/// Each method returns the measured value, so a check can sit inside an expression.
/// </summary>
public static class Check
{
    /// <summary>Passes when <paramref name="measured"/> ≤ <paramref name="limit"/> (and is not NaN).</summary>
    public static double AtMost(string fact, double measured, double limit) =>
        measured <= limit && !double.IsNaN(measured) ? measured : throw Fail(fact, measured, $"≤ {Format(limit)}");

    /// <summary>Passes when <paramref name="measured"/> ≥ <paramref name="limit"/> (and is not NaN).</summary>
    public static double AtLeast(string fact, double measured, double limit) =>
        measured >= limit && !double.IsNaN(measured) ? measured : throw Fail(fact, measured, $"≥ {Format(limit)}");

    /// <summary>Passes when |<paramref name="measured"/> − <paramref name="expected"/>| ≤ <paramref name="tolerance"/>.</summary>
    public static double Near(string fact, double measured, double expected, double tolerance) =>
        Math.Abs(measured - expected) <= tolerance ? measured : throw Fail(fact, measured, $"{Format(expected)} ± {Format(tolerance)}");

    /// <summary>Passes when the count equals the derived one.</summary>
    public static long Equal(string fact, long measured, long expected) =>
        measured == expected ? measured : throw Fail(fact, measured, $"= {expected}");

    /// <summary>Passes when the value is finite (not NaN, not ±∞).</summary>
    public static double Finite(string fact, double measured) =>
        double.IsFinite(measured) ? measured : throw Fail(fact, measured, "finite");

    /// <summary>Passes when every value is finite; names the first that is not.</summary>
    public static IReadOnlyList<double> AllFinite(string fact, IEnumerable<double> values)
    {
        var list = values.ToList();
        int bad = list.FindIndex(v => !double.IsFinite(v));
        return bad < 0 ? list : throw Fail($"{fact} (entry {bad} of {list.Count})", list[bad], "finite");
    }

    /// <summary>Passes when <paramref name="holds"/> is true; <paramref name="detail"/> says what was seen.</summary>
    public static void True(string fact, bool holds, string detail)
    {
        if (!holds) throw new CheckFailedException(fact, detail, "true");
    }

    static CheckFailedException Fail(string fact, double measured, string threshold) =>
        new(fact, Format(measured), threshold);

    internal static string Format(double x) => x.ToString("G4", CultureInfo.InvariantCulture);
}

/// <summary>A stated fact did not hold: the fact, what was measured and what was required.</summary>
public sealed class CheckFailedException(string fact, string measured, string threshold)
    : Exception($"check failed: {fact}: measured {measured}, required {threshold}")
{
    public string Fact { get; } = fact;
    public string Measured { get; } = measured;
    public string Threshold { get; } = threshold;
}
