using FastNotebooks.Bench;
using FastNotebooks.Models;
using FastNotebooks.Training;
using static TorchSharp.torch;

namespace FastNotebooks.Experiments;

/// <summary>One mechanism on one task: test accuracy, training speed and peak memory.</summary>
public sealed record LraResult(LraTask Task, string Attention, double TestAccuracy, double StepsPerSecond, double PeakMemoryMB, TrainingRun Run);

/// <summary>
/// Trains the one small LRA model (2 layers, 2 heads, width 64, FFN 128 — the Nyströmformer-style config, since LRA's
/// own configs are far beyond two CPU cores) for the same step budget with every mechanism.
/// </summary>
public static class LraExperiment
{
    public static readonly string[] Mechanisms = { "softmax", "fastmax1", "fastmax2", "linear", "fma" };

    public static (int Steps, int Batch) Budget(Profile profile) => profile.Pick((3, 4), (100, 8), (2000, 32));

    public static TransformerConfig Model(string attention, int length) => new(64, 2, 2, 128, attention, MaxTokens: length);

    public static LraResult Train(LraData data, string attention, Profile profile, long seed = 0, int? steps = null)
    {
        var (budget, batch) = Budget(profile);
        manual_seed(seed);
        var model = new SequenceClassifier(Model(attention, data.Length), data.Vocabulary, data.Classes, pairs: data.Task == LraTask.Retrieval);
        var options = new TrainingOptions { Steps = steps ?? budget, LearningRate = 1e-3, WeightDecay = 1e-2, Seed = seed, LogEvery = 50 };
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
        return new LraResult(data.Task, attention, correct / data.Test.Count, run.StepsPerSecond, run.Steps.Max(s => s.PeakBytes) / 1e6, run);
    }

    static Tensor Forward(SequenceClassifier model, IReadOnlyList<SequenceExample> examples)
    {
        Tensor Stack(Func<SequenceExample, long[]> pick) => tensor(examples.SelectMany(pick).ToArray()).view(examples.Count, -1);
        return model.forward(Stack(e => e.Tokens), examples[0].Second is null ? null : Stack(e => e.Second!));
    }

    /// <summary>
    /// Table 2 analog: training steps per second and the growth of peak memory of a fresh model on Text-like inputs at
    /// each length (batch as in the budget, a few steps).
    /// </summary>
    public static IReadOnlyList<(string Attention, int Length, double StepsPerSecond, double PeakGrowthMB)> SpeedAndMemory(
        IEnumerable<string> mechanisms, IEnumerable<int> lengths, Profile profile, int steps = 2)
    {
        int batch = profile.Pick(2, 4, 32);
        var rows = new List<(string, int, double, double)>();
        foreach (var length in lengths)
            foreach (var attention in mechanisms)
            {
                if (attention.StartsWith("fma") && !System.Numerics.BitOperations.IsPow2(length / 32)) continue; // FMA needs 32·2^k
                manual_seed(0);
                using var model = new SequenceClassifier(Model(attention, length), 257, 2);
                using var optimizer = optim.AdamW(model.parameters());
                var ids = randint(1, 257, new long[] { batch, length });
                var labels = randint(0, 2, new long[] { batch });
                void Step() { using var scope = NewDisposeScope(); optimizer.zero_grad(); nn.functional.cross_entropy(model.forward(ids, null), labels).backward(); optimizer.step(); }
                Step();
                double growth = Math.Max(0, ProcessMemory.PeakGrowth(Step) ?? 0) / 1e6;
                double ms = Timing.Median(Step, repeats: steps, warmup: 0);
                rows.Add((attention, length, 1000 / ms, growth));
            }
        return rows;
    }
}
