using FastNotebooks.Bench;
using FastNotebooks.Models;
using FastNotebooks.Training;
using static TorchSharp.torch;

namespace FastNotebooks.Experiments;

/// <summary>One mechanism on one task: test accuracy, chance, training speed and peak memory.</summary>
/// <param name="Task">The task.</param>
/// <param name="Attention">The mechanism's name.</param>
/// <param name="TestAccuracy">Accuracy on the test set.</param>
/// <param name="TestCount">Test examples.</param>
/// <param name="StepsPerSecond">Mean training speed.</param>
/// <param name="PeakMemoryMB">Peak resident memory during training.</param>
/// <param name="Run">The training records.</param>
/// <param name="Chance">The accuracy of always answering the test set's most common class (at least 1 / classes).</param>
public sealed record LraResult(LraTask Task, string Attention, double TestAccuracy, int TestCount, double Chance, double StepsPerSecond, double PeakMemoryMB, TrainingRun Run)
{
    /// <summary>Test accuracy with its 95 % (Wilson) interval over the test set.</summary>
    public Reporting.Interval TestInterval => Reporting.Intervals.Wilson(TestAccuracy, TestCount);

    /// <summary>Whether the interval lies wholly above chance.</summary>
    public bool AboveChance => TestInterval.Low > Chance;
}

/// <summary>
/// Trains the one small LRA model (2 layers, 2 heads, width 64, FFN 128 — the Nyströmformer-style config, since LRA's
/// own configs are far beyond two CPU cores) for the same step budget with every mechanism.
/// </summary>
public static class LraExperiment
{
    public static readonly string[] Mechanisms = { "softmax", "fastmax1", "fastmax2", "linear", "fma" };

    /// <summary>Steps, batch and peak rate per profile (warm-up of a tenth of the steps, then cosine decay).</summary>
    public static (int Steps, int Batch, double LearningRate) Budget(Profile profile) => profile.Pick((3, 4, 1e-3), (240, 16, 2e-3), (5000, 32, 1e-3));

    /// <summary>The accuracy of always answering the most common class of <paramref name="examples"/> (at least 1 / classes).</summary>
    public static double Chance(IReadOnlyList<SequenceExample> examples, int classes) =>
        Math.Max(1.0 / classes, examples.GroupBy(e => e.Label).Max(g => g.Count()) / (double)examples.Count);

    public static TransformerConfig Model(string attention, int length) => new(64, 2, 2, 128, attention, MaxTokens: length);

    public static LraResult Train(LraData data, string attention, Profile profile, long seed = 0, int? steps = null)
    {
        var (budget, batch, rate) = Budget(profile);
        manual_seed(seed);
        var model = new SequenceClassifier(Model(attention, data.Length), data.Vocabulary, data.Classes, pairs: data.Task == LraTask.Retrieval);
        int total = steps ?? budget;
        var options = new TrainingOptions { Steps = total, LearningRate = rate, WarmupSteps = total / 10, Schedule = LearningRateSchedule.Cosine, WeightDecay = 1e-2, Seed = seed, LogEvery = 100 };
        var run = new Trainer(model, options).Run(step =>
        {
            var examples = Enumerable.Range(0, batch).Select(i => data.Train[(int)((step * batch + i) % data.Train.Count)]).ToList();
            var logits = Forward(model, examples);
            var labels = tensor(examples.Select(e => (long)e.Label).ToArray());
            return (nn.functional.cross_entropy(logits, labels), MnistExperiment.Accuracy(logits, labels));
        }, null, $"{data.Task} {attention}");
        model.eval();
        double correct = 0;
        using (no_grad())
            foreach (var chunk in data.Test.Chunk(batch))
            {
                using var scope = NewDisposeScope();
                correct += MnistExperiment.Accuracy(Forward(model, chunk), tensor(chunk.Select(e => (long)e.Label).ToArray())) * chunk.Length;
            }
        return new LraResult(data.Task, attention, correct / data.Test.Count, data.Test.Count, Chance(data.Test, data.Classes), run.StepsPerSecond, run.Steps.Max(s => s.PeakBytes) / 1e6, run);
    }

    static Tensor Forward(SequenceClassifier model, IReadOnlyList<SequenceExample> examples)
    {
        Tensor Stack(Func<SequenceExample, long[]> pick) => tensor(examples.SelectMany(pick).ToArray()).view(examples.Count, -1);
        return model.forward(Stack(e => e.Tokens), examples[0].Second is null ? null : Stack(e => e.Second!));
    }

    /// <summary>One row of the Table 2 analog.</summary>
    public sealed record SpeedRow(string Attention, int Length, double StepsPerSecond, double MedianStepsPerSecond, double PeakGrowthMB);

    /// <summary>
    /// Table 2 analog: training steps per second (from the fastest and the median of <paramref name="repeats"/> timed
    /// steps after a warm-up, by <see cref="Timing.Sweep"/>) and the growth of peak memory of a fresh model on Text-like
    /// inputs at each length. FMA runs only at lengths 32·2^k.
    /// </summary>
    public static IReadOnlyList<SpeedRow> SpeedAndMemory(IEnumerable<string> mechanisms, IReadOnlyList<int> lengths, Profile profile, int repeats = 3)
    {
        int batch = profile.Pick(2, 4, 32);
        var rows = new List<SpeedRow>();
        foreach (var attention in mechanisms)
        {
            var sizes = lengths.Where(n => !attention.StartsWith("fma") || System.Numerics.BitOperations.IsPow2(n / 32) && n % 32 == 0).ToList();
            var growth = new Dictionary<int, double>();
            var disposables = new List<IDisposable>();
            try
            {
                var times = Timing.Sweep(sizes, length =>
                {
                    manual_seed(0);
                    var model = new SequenceClassifier(Model(attention, length), 257, 2);
                    var optimizer = optim.AdamW(model.parameters());
                    disposables.Add(model); disposables.Add(optimizer);
                    var ids = randint(1, 257, new long[] { batch, length });
                    var labels = randint(0, 2, new long[] { batch });
                    void Step() { using var scope = NewDisposeScope(); optimizer.zero_grad(); nn.functional.cross_entropy(model.forward(ids, null), labels).backward(); optimizer.step(); }
                    Step();
                    growth[length] = Math.Max(0, ProcessMemory.PeakGrowth(Step) ?? 0) / 1e6;
                    return Step;
                }, repeats, warmup: 1);
                rows.AddRange(times.Select(t => new SpeedRow(attention, t.Size, 1000 / t.Fastest, 1000 / t.Median, growth[t.Size])));
            }
            finally { foreach (var d in disposables) d.Dispose(); }
        }
        return rows;
    }
}
