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
    /// <summary>One trained configuration: a regularizer at a rate (rate 0: the model without it).</summary>
    public sealed record Variant(string Name, string Regularizer, double Rate, TransformerConfig Model);

    public sealed record Outcome(string Variant, string Regularizer, double Rate, double TrainAccuracy, double TestAccuracy, int TestImages, TrainingRun Run)
    {
        public double Gap => TrainAccuracy - TestAccuracy;

        /// <summary>Test accuracy with its 95 % interval over the test images.</summary>
        public Reporting.Interval TestInterval => Reporting.Intervals.Wilson(TestAccuracy, TestImages);
    }

    /// <summary>
    /// The study's sizes by profile: a small training set trained for many epochs, so that a model without regularizer
    /// overfits (training accuracy near 100 %, test accuracy clearly below). Quick: 500 images, a 2-block model of
    /// width 32, 600 steps of 32 (38 epochs) with warm-up and cosine decay; full: the paper's model on 2000 images.
    /// </summary>
    public static MnistExperiment.Settings Schedule(Profile profile) => profile.Pick(
        smoke: new MnistExperiment.Settings(new TransformerConfig(32, 2, 1, 64, "fastmax2", MaxTokens: 50), 8, 16, 128, 256, 1e-3, 1, LearningRateSchedule.Cosine, 256),
        quick: new MnistExperiment.Settings(new TransformerConfig(32, 2, 2, 64, "fastmax2", MaxTokens: 50), 600, 32, 500, 10_000, 2e-3, 50, LearningRateSchedule.Cosine, 2_000),
        full: new MnistExperiment.Settings(TransformerConfig.PaperMnist("fastmax2"), 3000, 64, 2000, 10_000));

    /// <summary>The rates of the sweep (the paper's Fig. 2 question: test accuracy against the rate).</summary>
    public static IReadOnlyList<double> Rates(Profile profile) => profile.Pick(new[] { 0.0, 0.2 }, new[] { 0.0, 0.1, 0.2, 0.3 }, new[] { 0.0, 0.1, 0.2, 0.3 });

    /// <summary>The regularizers: three on Fastmax p = 2 and attention dropout on softmax.</summary>
    public static readonly IReadOnlyList<string> Regularizers = new[] { "quadratic-term dropout", "linear-term dropout", "output noise", "softmax attention dropout" };

    /// <summary>Every (regularizer, rate) of the sweep; rate 0 appears once per base model (Fastmax p = 2 and softmax).</summary>
    public static IReadOnlyList<Variant> Sweep(Profile profile)
    {
        var fastmax = Schedule(profile).Model;
        var softmax = fastmax with { Attention = "softmax" };
        var variants = new List<Variant>
        {
            new("fastmax2, no regularizer", "none", 0, fastmax),
            new("softmax, no regularizer", "none", 0, softmax),
        };
        foreach (var rate in Rates(profile).Where(r => r > 0))
        {
            variants.Add(new($"fastmax2, quadratic-term dropout {rate}", Regularizers[0], rate, fastmax with { AttentionDropout = rate, FastmaxDropoutKind = FastmaxDropout.QuadraticTerm }));
            variants.Add(new($"fastmax2, linear-term dropout {rate}", Regularizers[1], rate, fastmax with { AttentionDropout = rate, FastmaxDropoutKind = FastmaxDropout.LinearTerm }));
            variants.Add(new($"fastmax2, output noise {rate}", Regularizers[2], rate, fastmax with { AttentionDropout = rate, FastmaxDropoutKind = FastmaxDropout.OutputNoise }));
            variants.Add(new($"softmax, attention dropout {rate}", Regularizers[3], rate, softmax with { AttentionDropout = rate }));
        }
        return variants;
    }

    /// <summary>The base model's rate-0 run a regularizer is compared with.</summary>
    public static string BaselineOf(string regularizer) => regularizer == Regularizers[3] ? "softmax, no regularizer" : "fastmax2, no regularizer";

    /// <summary>
    /// Trains one variant. With a run directory — by default <see cref="RunDirectories.For"/>, i.e. in the full profile
    /// — it checkpoints and resumes there, and writes the variant's outcome to <c>outcome.json</c> as soon as it is
    /// known, so an interrupted study keeps every finished variant.
    /// </summary>
    public static Outcome Train(Variant variant, Profile profile, ImageBatches train, ImageBatches test, long seed = 0, string? outputDirectory = null)
    {
        var settings = Schedule(profile) with { Model = variant.Model };
        outputDirectory ??= RunDirectories.For(profile, "06-dropout", variant.Name);
        var result = MnistExperiment.Train(variant.Model.Attention, profile, train, test, seed: seed, outputDirectory: outputDirectory, settings: settings);
        result.Model.eval();
        using var noGrad = TorchSharp.torch.no_grad();
        var trainAccuracy = MnistExperiment.Evaluate(result.Model, train, 500).Accuracy;
        var outcome = new Outcome(variant.Name, variant.Regularizer, variant.Rate, trainAccuracy, result.TestAccuracy, result.TestImages, result.Run);
        if (outputDirectory != null)
            DataCache.WriteAtomically(Path.Combine(outputDirectory, OutcomeFile), stream => JsonSerializer.Serialize(stream,
                new { outcome.Variant, outcome.TrainAccuracy, outcome.TestAccuracy, outcome.Gap, Steps = outcome.Run.Steps.Count }, JsonOptions));
        return outcome;
    }

    /// <summary>The file in a variant's run directory that holds its accuracies.</summary>
    public const string OutcomeFile = "outcome.json";

    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };
}
