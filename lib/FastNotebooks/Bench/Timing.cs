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

    /// <summary>
    /// The bench's forward samples reach this many milliseconds in all (<see cref="BenchSamples"/>): a few runs of a sub-millisecond case
    /// left its fastest, and so its ratios, to chance (PERF.md).
    /// </summary>
    public const double BenchSampleBudgetMs = 250;

    /// <summary>At most this many samples a case in the bench.</summary>
    public const int BenchMaximumRepeats = 200;

    /// <summary>
    /// The bench's samples of a call: at least <paramref name="repeats"/>, more until they add up to <see cref="BenchSampleBudgetMs"/>
    /// (at most <see cref="BenchMaximumRepeats"/>), after one untimed call.
    /// </summary>
    public static double[] BenchSamples(Action action, int repeats) => SamplesFor(action, repeats, BenchSampleBudgetMs, BenchMaximumRepeats);

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

    /// <summary>
    /// Times one case per size: <paramref name="warmup"/> untimed runs (so the JIT has promoted the timed code to its
    /// optimized tier and the allocator has its pages), then <paramref name="repeats"/> timed ones, reporting the fastest
    /// (the least disturbed on a shared machine) and the median. A size whose fastest time is more than
    /// <paramref name="outlierFactor"/> off the geometric mean of its neighbours' is measured once more and the better
    /// of the two kept — a chart never shows a point 5× off its neighbours from one disturbed measurement.
    /// </summary>
    /// <param name="sizes">The sizes, in increasing order.</param>
    /// <param name="prepare">Builds the timed action for one size (untimed).</param>
    /// <param name="repeats">Timed runs per size.</param>
    /// <param name="warmup">Untimed runs per size before them.</param>
    /// <param name="outlierFactor">How far off its neighbours a size may be before it is measured again.</param>
    public static IReadOnlyList<SizedTiming> Sweep(IReadOnlyList<int> sizes, Func<int, Action> prepare, int repeats = 5, int warmup = 2, double outlierFactor = 5)
    {
        if (repeats < 1) throw new ArgumentOutOfRangeException(nameof(repeats), repeats, "must be at least 1.");
        SizedTiming Measure(int size)
        {
            var action = prepare(size);
            var samples = Samples(action, repeats, warmup);
            return new SizedTiming(size, samples.Min(), Median(samples), samples.Length);
        }
        var results = sizes.Select(Measure).ToList();
        for (int i = 0; i < results.Count; i++)
        {
            var neighbours = new[] { i - 1, i + 1 }.Where(j => j >= 0 && j < results.Count).Select(j => results[j].Fastest).ToList();
            if (neighbours.Count == 0) continue;
            double typical = Math.Exp(neighbours.Average(Math.Log));
            double ratio = results[i].Fastest / typical;
            if (ratio > outlierFactor || ratio < 1 / outlierFactor)
            {
                var again = Measure(results[i].Size);
                if (again.Fastest < results[i].Fastest || ratio < 1 / outlierFactor) results[i] = again with { Remeasured = true };
            }
        }
        return results;
    }
}

/// <summary>One size of a <see cref="Timing.Sweep"/>: fastest and median milliseconds over the timed runs.</summary>
public sealed record SizedTiming(int Size, double Fastest, double Median, int Runs, bool Remeasured = false);
