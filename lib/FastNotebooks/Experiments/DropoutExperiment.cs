using System.Text.Json;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Data;
using FastNotebooks.Models;
using FastNotebooks.Training;

namespace FastNotebooks.Experiments;

/// <summary>
/// The paper's Fig. 2 study of regularizers, as a small-training-set experiment: the same image classifier trained on a
/// few hundred or thousand images with no dropout, quadratic-term feature dropout, linear-term dropout, output noise
/// (Fastmax p = 2) and ordinary attention dropout (softmax); the gap between training and test accuracy measures
/// overfitting.
/// </summary>
public static class DropoutExperiment
{
    public sealed record Variant(string Name, TransformerConfig Model);

    public sealed record Outcome(string Variant, double TrainAccuracy, double TestAccuracy, TrainingRun Run)
    {
        public double Gap => TrainAccuracy - TestAccuracy;
    }

    /// <summary>Training images, steps and batch by profile.</summary>
    public static (int TrainImages, int Steps, int Batch) Schedule(Profile profile) =>
        profile.Pick((128, 8, 16), (1000, 400, 32), (2000, 3000, 64));

    public static IReadOnlyList<Variant> Variants(Profile profile, double rate = 0.2)
    {
        var baseline = profile.Pick(new TransformerConfig(32, 2, 1, 64, "fastmax2", MaxTokens: 50),
                                    new TransformerConfig(64, 4, 4, 128, "fastmax2", MaxTokens: 50),
                                    TransformerConfig.PaperMnist("fastmax2"));
        return new[]
        {
            new Variant("fastmax2, no dropout", baseline),
            new Variant("fastmax2, quadratic-term dropout", baseline with { AttentionDropout = rate, FastmaxDropoutKind = FastmaxDropout.QuadraticTerm }),
            new Variant("fastmax2, linear-term dropout", baseline with { AttentionDropout = rate, FastmaxDropoutKind = FastmaxDropout.LinearTerm }),
            new Variant("fastmax2, output noise", baseline with { AttentionDropout = rate, FastmaxDropoutKind = FastmaxDropout.OutputNoise }),
            new Variant("softmax, attention dropout", baseline with { Attention = "softmax", AttentionDropout = rate }),
        };
    }

    /// <summary>
    /// Trains one variant. With a run directory — by default <see cref="RunDirectories.For"/>, i.e. in the full profile
    /// — it checkpoints and resumes there, and writes the variant's outcome to <c>outcome.json</c> as soon as it is
    /// known, so an interrupted study keeps every finished variant.
    /// </summary>
    public static Outcome Train(Variant variant, Profile profile, ImageBatches train, ImageBatches test, long seed = 0, string? outputDirectory = null)
    {
        var (_, steps, batch) = Schedule(profile);
        outputDirectory ??= RunDirectories.For(profile, "06-dropout", variant.Name);
        var result = MnistExperiment.Train(variant.Model.Attention, profile, train, test, variant.Model, seed: seed, steps: steps, batch: batch,
            outputDirectory: outputDirectory);
        result.Model.eval();
        using var noGrad = TorchSharp.torch.no_grad();
        var trainAccuracy = MnistExperiment.Evaluate(result.Model, train, batch).Accuracy;
        var outcome = new Outcome(variant.Name, trainAccuracy, result.TestAccuracy, result.Run);
        if (outputDirectory != null)
            DataCache.WriteAtomically(Path.Combine(outputDirectory, OutcomeFile), stream => JsonSerializer.Serialize(stream,
                new { outcome.Variant, outcome.TrainAccuracy, outcome.TestAccuracy, outcome.Gap, Steps = outcome.Run.Steps.Count }, JsonOptions));
        return outcome;
    }

    /// <summary>The file in a variant's run directory that holds its accuracies.</summary>
    public const string OutcomeFile = "outcome.json";

    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };
}
