using System.Diagnostics;
using FastNotebooks.Attention;
using FastNotebooks.Models;
using static TorchSharp.torch;

namespace FastNotebooks.Bench;

/// <summary>
/// One training step of the character LM (forward, cross-entropy, backward, AdamW step) at one context, fastest and median of
/// the repeats; and the attention layers' share: the mechanism's own forward + backward on the model's q, k, v shapes, timed
/// alone, times the number of blocks, over the step.
/// </summary>
public sealed record TrainingRow(string Attention, int Context, int Batch, double StepMs, double StepMedianMs, double AttentionMs)
{
    public double AttentionFraction => AttentionMs / StepMs;
}

/// <summary>Model-level training speed: what a user of the kernels waits for.</summary>
public static class TrainingSpeed
{
    /// <summary>
    /// Steps of a fresh model (<paramref name="config"/> with each attention and MaxTokens = context) on random ids [batch, context]:
    /// one warm-up step, then <paramref name="repeats"/> timed ones (at least one; fewer once they add up to
    /// <paramref name="budgetMs"/>).
    /// </summary>
    public static List<TrainingRow> Measure(TransformerConfig config, int vocabulary, IReadOnlyList<int> contexts, IReadOnlyList<string> attentions,
        int batch = 1, int repeats = 3, double budgetMs = 20_000, Action<string>? log = null)
    {
        var rows = new List<TrainingRow>();
        foreach (int context in contexts)
            foreach (var attention in attentions)
            {
                log?.Invoke($"training step, char-LM {attention}: context {context}");
                manual_seed(0);
                using var model = new CharLanguageModel(config with { Attention = attention, MaxTokens = context }, vocabulary);
                using var optimizer = optim.AdamW(model.parameters());
                var ids = randint(0, vocabulary, new long[] { batch, context });
                var steps = Samples(() =>
                {
                    optimizer.zero_grad();
                    nn.functional.cross_entropy(model.forward(ids).flatten(0, 1), ids.flatten()).backward();
                    optimizer.step();
                    NativeHeap.ReleaseUnownedNativeObjects();   // as the Trainer does each step, inside the timed step
                }, repeats, budgetMs);

                using var mechanism = AttentionRegistry.Create(attention, causal: true, headDim: config.HeadDim, maxLength: context);
                var shape = new long[] { batch, config.Heads, context, config.HeadDim };
                var inputs = Enumerable.Range(0, 3).Select(_ => randn(shape).requires_grad_()).ToArray();
                var weights = randn(shape);
                var layer = Samples(() => (mechanism.forward(inputs[0], inputs[1], inputs[2]) * weights).sum().backward(), repeats, budgetMs);
                foreach (var t in inputs.Append(weights).Append(ids)) t.Dispose();
                rows.Add(new TrainingRow(attention, context, batch, steps.Min(), Timing.Median(steps), config.Blocks * layer.Min()));
            }
        return rows;
    }

    /// <summary>One untimed run, then up to <paramref name="repeats"/> timed ones, stopping early once they add up to <paramref name="budgetMs"/>.</summary>
    static double[] Samples(Action action, int repeats, double budgetMs)
    {
        var samples = new List<double>();
        for (int r = 0; r <= repeats; r++)
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            action();
            if (r > 0) samples.Add(clock.Elapsed.TotalMilliseconds);
            if (samples.Count > 0 && samples.Sum() > budgetMs) break;
        }
        return samples.ToArray();
    }
}
