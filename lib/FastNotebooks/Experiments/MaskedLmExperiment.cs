using FastNotebooks.Data;
using FastNotebooks.Models;
using FastNotebooks.Training;
using static TorchSharp.torch;

namespace FastNotebooks.Experiments;

/// <summary>One trained masked character model: its run, validation loss (nats) and bits per masked character.</summary>
public sealed record MaskedLmRun(string Attention, TrainingRun Run, double ValidationLoss, double ValidationAccuracy, MaskedCharModel Model)
{
    public double BitsPerCharacter => MaskedLmExperiment.Bits(ValidationLoss);
}

/// <summary>Bits per masked character of the count baselines, on the same validation positions as the models.</summary>
/// <param name="Unigram">Character frequencies alone: what a model without attention can reach (a masked position
/// then sees only [MASK] and its position).</param>
/// <param name="LeftNeighbour">P(c | the character before), from training counts: the bigram plateau.</param>
/// <param name="BothNeighbours">P(c | the characters before and after), from training counts.</param>
public sealed record MaskedLmBaselines(double Unigram, double LeftNeighbour, double BothNeighbours);

/// <summary>
/// Masked character language modelling on Moby-Dick, the bidirectional analogue of FMA's masked-LM experiment
/// (Kang et al., arXiv 2310.11960: WikiText-103, 6 layers). Each training window has a fraction
/// <see cref="Settings.MaskRate"/> of its characters replaced by [MASK] (always the mask symbol: no BERT-style
/// 80/10/10 split); the loss is the cross-entropy at the masked positions only, reported in nats and in bits per
/// character. Bidirectional models only: softmax without a mask, unmasked Fastmax, FMA without its causal masks.
/// </summary>
public static class MaskedLmExperiment
{
    /// <summary>Sizes and schedule of one profile. Context must be a power of two for FMA (blocks of an eighth of it, at most 32).</summary>
    public sealed record Settings(TransformerConfig Model, int Steps, int Batch, int Context, double LearningRate, double MaskRate, int ValidationBatches);

    public static readonly string[] Mechanisms = { "softmax", "fastmax2", "fma" };

    public static Settings For(Profile profile, string attention) => profile.Pick(
        smoke: new Settings(new TransformerConfig(32, 2, 1, 64, attention, MaxTokens: 64), 12, 8, 64, 2e-3, 0.15, 2),
        quick: new Settings(new TransformerConfig(128, 4, 4, 512, attention, MaxTokens: 64), 1200, 16, 64, 2e-3, 0.25, 8),
        // The FMA paper's masked-LM model is 6 layers at lengths 512–2K; 512 keeps its levels meaningful (block 32: 3 levels).
        full: new Settings(new TransformerConfig(256, 8, 6, 1024, attention, MaxTokens: 512), 5000, 32, 512, 5e-4, 0.15, 32));

    /// <summary>Nats to bits.</summary>
    public static double Bits(double nats) => nats / Math.Log(2);

    /// <summary>
    /// Masks a fraction <paramref name="rate"/> of the positions of <paramref name="ids"/> [B, N] (at least one per row),
    /// a pure function of <paramref name="seed"/>: the masked input (masked positions set to <paramref name="maskId"/>)
    /// and a boolean [B, N] marking the masked positions.
    /// </summary>
    public static (Tensor Input, Tensor Masked) Mask(Tensor ids, double rate, long maskId, int seed)
    {
        if (rate <= 0 || rate >= 1) throw new ArgumentException($"rate must be in (0, 1); got {rate}.", nameof(rate));
        if (ids.dim() != 2) throw new ArgumentException($"ids must be [B, N]; got {ids.dim()} dimensions.", nameof(ids));
        long b = ids.shape[0], n = ids.shape[1];
        var random = new Random(seed);
        var masked = new bool[b * n];
        for (long row = 0; row < b; row++)
        {
            bool any = false;
            for (long i = 0; i < n; i++) any |= masked[row * n + i] = random.NextDouble() < rate;
            if (!any) masked[row * n + random.Next((int)n)] = true;
        }
        var mask = tensor(masked).view(b, n);
        return (ids.masked_fill(mask, maskId), mask);
    }

    /// <summary>Windows of one split and their masks for batch <paramref name="step"/>: masked input, targets, mask.</summary>
    public static (Tensor Input, Tensor Targets, Tensor Masked) Batch(CharCorpus corpus, Settings settings, bool validation, long seed, long step)
    {
        var (windows, _, _) = corpus.Batch(validation, settings.Batch, settings.Context, seed, step);
        var (input, masked) = Mask(windows, settings.MaskRate, corpus.Vocabulary.Length, Seeds.Mix(seed, step, validation ? 1 : 0, 7));
        return (input, windows, masked);
    }

    public static MaskedLmRun Train(string attention, Profile profile, CharCorpus corpus, long seed = 0, string? outputDirectory = null) =>
        Train(For(profile, attention), corpus, seed, outputDirectory);

    /// <summary>Trains the model of <paramref name="settings"/> (its attention by name) and validates it every tenth of the run.</summary>
    public static MaskedLmRun Train(Settings settings, CharCorpus corpus, long seed = 0, string? outputDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        string attention = settings.Model.Attention;
        manual_seed(seed);
        var model = new MaskedCharModel(settings.Model, corpus.Vocabulary.Length);
        var options = new TrainingOptions
        {
            Steps = settings.Steps, LearningRate = settings.LearningRate, WeightDecay = 0, Seed = seed,
            // A tenth of the run warms up, then the rate decays (cosine): at a constant rate the short quick schedule stalled
            // on the unigram plateau.
            WarmupSteps = settings.Steps / 10, Schedule = LearningRateSchedule.Cosine,
            Fingerprint = $"masked LM {settings} on {corpus.Train.Length} characters",
            EvaluateEvery = Math.Max(1, settings.Steps / 10), OutputDirectory = outputDirectory, LogEvery = 100,
            CheckpointEvery = outputDirectory is null ? 0 : RunDirectories.CheckpointEvery,
        };
        var run = new Trainer(model, options).Run(step =>
        {
            var (input, targets, masked) = Batch(corpus, settings, false, seed, step);
            var logits = model.forward(input)[masked];                     // [masked, vocabulary]
            var wanted = targets[masked];
            return (nn.functional.cross_entropy(logits, wanted), MnistExperiment.Accuracy(logits, wanted));
        }, () => Validate(model, corpus, settings), $"masked {attention}");
        return new MaskedLmRun(attention, run, run.Final?.Loss ?? double.NaN, run.Final?.Accuracy ?? double.NaN, model);
    }

    /// <summary>Loss (nats) and accuracy at the masked positions of a fixed set of validation windows and masks.</summary>
    public static (double Loss, double Accuracy) Validate(MaskedCharModel model, CharCorpus corpus, Settings settings)
    {
        double loss = 0, correct = 0, count = 0;
        for (int b = 0; b < settings.ValidationBatches; b++)
        {
            using var scope = NewDisposeScope();
            var (input, targets, masked) = Batch(corpus, settings, true, ValidationSeed, b);
            var logits = model.forward(input)[masked];
            var wanted = targets[masked];
            long k = wanted.shape[0];
            loss += nn.functional.cross_entropy(logits, wanted, reduction: nn.Reduction.Sum).item<float>();
            correct += logits.argmax(-1).eq(wanted).sum().item<long>();
            count += k;
        }
        return (loss / count, correct / count);
    }

    const long ValidationSeed = 12345;

    /// <summary>
    /// The count baselines on exactly the validation positions <see cref="Validate"/> scores, with add-one smoothing
    /// over the training split. They read the true neighbours even where those are masked too, an advantage the
    /// models do not have.
    /// </summary>
    public static MaskedLmBaselines Baselines(CharCorpus corpus, Settings settings)
    {
        int v = corpus.Vocabulary.Length;
        var train = corpus.Train;
        var unigram = new double[v];
        var left = new double[v, v];
        var both = new Dictionary<(long, long), double[]>();
        for (int i = 0; i < train.Length; i++)
        {
            unigram[train[i]]++;
            if (i > 0) left[train[i - 1], train[i]]++;
            if (i > 0 && i + 1 < train.Length)
            {
                if (!both.TryGetValue((train[i - 1], train[i + 1]), out var counts)) both[(train[i - 1], train[i + 1])] = counts = new double[v];
                counts[train[i]]++;
            }
        }
        double total = train.Length;
        double uni = 0, bi = 0, tri = 0;
        long scored = 0;
        for (int b = 0; b < settings.ValidationBatches; b++)
        {
            var (windows, _, starts) = corpus.Batch(true, settings.Batch, settings.Context, ValidationSeed, b);
            var (_, masked) = Mask(windows, settings.MaskRate, v, Seeds.Mix(ValidationSeed, b, 1, 7));
            var isMasked = masked.data<bool>().ToArray();
            for (int row = 0; row < starts.Length; row++)
                for (int i = 0; i < settings.Context; i++)
                {
                    if (!isMasked[row * settings.Context + i]) continue;
                    int at = starts[row] + i;
                    long c = corpus.Validation[at];
                    uni += -Math.Log((unigram[c] + 1) / (total + v));
                    if (at > 0)
                    {
                        long l = corpus.Validation[at - 1];
                        double leftTotal = Enumerable.Range(0, v).Sum(x => left[l, x]);
                        bi += -Math.Log((left[l, c] + 1) / (leftTotal + v));
                        if (at + 1 < corpus.Validation.Length && both.TryGetValue((l, corpus.Validation[at + 1]), out var counts))
                            tri += -Math.Log((counts[c] + 1) / (counts.Sum() + v));
                        else tri += -Math.Log(1.0 / v);
                    }
                    else { bi += -Math.Log((unigram[c] + 1) / (total + v)); tri += -Math.Log((unigram[c] + 1) / (total + v)); }
                    scored++;
                }
        }
        return new MaskedLmBaselines(Bits(uni / scored), Bits(bi / scored), Bits(tri / scored));
    }
}
