using System.Diagnostics;

namespace FastNotebooks.Bench;

/// <summary>Wall-clock timing of an action: warm-up runs first, then the median of repeats (robust to a noisy, shared machine).</summary>
public static class Timing
{
    /// <summary>Every repeat's time in milliseconds, after <paramref name="warmup"/> untimed runs.</summary>
    public static double[] Samples(Action action, int repeats, int warmup = 1)
    {
        for (int i = 0; i < warmup; i++) action();
        var samples = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            var watch = Stopwatch.StartNew();
            action();
            samples[i] = watch.Elapsed.TotalMilliseconds;
        }
        return samples;
    }

    /// <summary>
    /// Every repeat's time in milliseconds: at least <paramref name="repeats"/> runs, and more (up to
    /// <paramref name="maximumRepeats"/>) until they add up to <paramref name="totalMs"/>, so a sub-millisecond case gets as
    /// many chances at an undisturbed run as a slow one gets time.
    /// </summary>
    public static double[] SamplesFor(Action action, int repeats, double totalMs, int maximumRepeats, int warmup = 1)
    {
        var samples = Samples(action, repeats, warmup).ToList();
        for (double total = samples.Sum(); samples.Count < maximumRepeats && total < totalMs; total += samples[^1])
            samples.Add(Samples(action, 1, 0)[0]);
        return samples.ToArray();
    }

    /// <summary>Median time in milliseconds of <paramref name="repeats"/> runs after <paramref name="warmup"/> untimed ones.</summary>
    public static double Median(Action action, int repeats = 5, int warmup = 1) => Median(Samples(action, repeats, warmup));

    /// <summary>
    /// Fastest of <paramref name="repeats"/> runs after <paramref name="warmup"/> untimed ones: on a shared machine the
    /// run least disturbed by other processes (the bench reports it beside the median).
    /// </summary>
    public static double Best(Action action, int repeats = 5, int warmup = 1) => Samples(action, repeats, warmup).Min();

    /// <summary>Median of a sample (mean of the middle two for an even count).</summary>
    public static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.OrderBy(x => x).ToArray();
        int m = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
    }
}
