using FastNotebooks.Data;
using FastNotebooks.Models;
using FastNotebooks.Training;
using static TorchSharp.torch;

namespace FastNotebooks.Experiments;

/// <summary>One trained image classifier: its run, final accuracy on every test image loaded, and the model (for attention maps).</summary>
public sealed record ImageRun(string Attention, TrainingRun Run, double TestAccuracy, int TestImages, ImageClassifier Model)
{
    /// <summary>The test accuracy with its 95 % (Wilson) interval over the test images.</summary>
    public Reporting.Interval TestInterval => Reporting.Intervals.Wilson(TestAccuracy, TestImages);
}

/// <summary>
/// The paper's MNIST experiment (FAST, arXiv 2402.07901): a 4×4-patch transformer classifier trained with AdamW.
/// <c>full</c> is the paper's configuration (width 96, 6 blocks, lr 5e-4 constant, wd 1e-3, batch 128, 10 epochs).
/// <c>quick</c> shrinks the model, not the data: width 64, 3 blocks (about a third of the paper model's cost per step),
/// 1500 steps of 64 (1.6 epochs) with a short warm-up and a cosine decay from a higher rate, so that softmax gets past
/// 95 % within minutes on two cores and the comparison is made where the models have learned the task. <c>smoke</c> runs a tiny
/// model for a few steps. Every profile scores the final model on every test image it loads (all 10,000 in quick and
/// full); the evaluations during training use the first <see cref="Settings.CurveImages"/> of them.
/// </summary>
public static class MnistExperiment
{
    /// <summary>Sizes and schedule of one profile.</summary>
    /// <param name="Model">The classifier.</param>
    /// <param name="Steps">Optimizer steps.</param>
    /// <param name="Batch">Images per step.</param>
    /// <param name="TrainImages">Training images used (the first ones of the training set).</param>
    /// <param name="TestImages">Test images the final accuracy is measured on.</param>
    /// <param name="LearningRate">AdamW's peak rate.</param>
    /// <param name="WarmupSteps">Linear warm-up.</param>
    /// <param name="Schedule">Constant (the paper) or cosine after warm-up.</param>
    /// <param name="CurveImages">Test images of the evaluations during training (the learning curve).</param>
    public sealed record Settings(TransformerConfig Model, int Steps, int Batch, int TrainImages, int TestImages,
        double LearningRate = 5e-4, int WarmupSteps = 0, LearningRateSchedule Schedule = LearningRateSchedule.Constant, int CurveImages = 2_000);

    public static Settings For(Profile profile, string attention) => profile.Pick(
        smoke: new Settings(new TransformerConfig(32, 2, 1, 64, attention, MaxTokens: 50), 15, 16, 512, 256, 1e-3, 2, LearningRateSchedule.Cosine, 256),
        quick: new Settings(new TransformerConfig(64, 4, 3, 128, attention, MaxTokens: 50), QuickSteps, 64, 60_000, 10_000,
            QuickRate, QuickWarmup, LearningRateSchedule.Cosine),
        full: new Settings(TransformerConfig.PaperMnist(attention), 10 * 60_000 / 128, 128, 60_000, 10_000));

    internal const int QuickSteps = 1500, QuickWarmup = 50;
    internal const double QuickRate = 2e-3;

    /// <summary>
    /// Train and test images: the real MNIST — fetched on first use — or, in a smoke run with nothing cached, the MNIST
    /// slice shipped in data/fixture (<see cref="DataFixture"/>: same IDX reader, same hash checks), saying which.
    /// </summary>
    public static (ImageBatches Train, ImageBatches Test, string Source) Load(Profile profile)
    {
        var settings = For(profile, "softmax");
        bool fixture = profile == Profile.Smoke && !Datasets.IsCached(Datasets.MnistFiles);
        var data = fixture ? DataFixture.Mnist() : Datasets.Mnist();
        return (new ImageBatches(data.TrainImages, data.TrainLabels, settings.TrainImages),
                new ImageBatches(data.TestImages, data.TestLabels, settings.TestImages),
                fixture ? $"MNIST, the repository's fixture ({DataFixture.TrainImages} + {DataFixture.TestImages} images; smoke profile, nothing cached)" : "MNIST");
    }

    public static ImageRun Train(string attention, Profile profile, ImageBatches train, ImageBatches test,
        TransformerConfig? model = null, string? outputDirectory = null, long seed = 0, int? steps = null, int? batch = null, Settings? settings = null)
    {
        settings ??= For(profile, attention);
        if (batch is { } size) settings = settings with { Batch = size };
        if (steps is { } count) settings = settings with { Steps = count };
        if (model is { } config) settings = settings with { Model = config };
        manual_seed(seed);
        var classifier = new ImageClassifier(settings.Model);
        var curve = test.Count > settings.CurveImages ? test.Head(settings.CurveImages) : test;
        var options = new TrainingOptions
        {
            Steps = settings.Steps, LearningRate = settings.LearningRate, WarmupSteps = settings.WarmupSteps, Schedule = settings.Schedule,
            WeightDecay = 1e-3, Seed = seed, EvaluateEvery = Math.Max(1, settings.Steps / 8), OutputDirectory = outputDirectory,
            LogEvery = 100, CheckpointEvery = outputDirectory is null ? 0 : RunDirectories.CheckpointEvery,
            Fingerprint = $"mnist {settings} on {train.Count} training images",
        };
        var run = new Trainer(classifier, options).Run(step =>
        {
            var (images, labels) = train.Batch(settings.Batch, seed, step);
            var logits = classifier.forward(images);
            return (nn.functional.cross_entropy(logits, labels), Accuracy(logits, labels));
        }, () => Evaluate(classifier, curve, 500), attention);
        classifier.eval();
        double accuracy;
        using (no_grad()) accuracy = Evaluate(classifier, test, 500).Accuracy;
        return new ImageRun(attention, run, accuracy, test.Count, classifier);
    }

    /// <summary>Mean loss and accuracy over a whole set (call in eval mode without gradients).</summary>
    public static (double Loss, double Accuracy) Evaluate(ImageClassifier model, ImageBatches data, int batch)
    {
        double loss = 0, correct = 0;
        foreach (var (images, labels) in data.All(batch))
        {
            using var scope = NewDisposeScope();
            var logits = model.forward(images);
            loss += nn.functional.cross_entropy(logits, labels, reduction: nn.Reduction.Sum).item<float>();
            correct += Accuracy(logits, labels) * labels.shape[0];
        }
        return (loss / data.Count, correct / data.Count);
    }

    public static double Accuracy(Tensor logits, Tensor labels)
    {
        using var right = logits.argmax(-1).eq(labels);
        return right.to(ScalarType.Float32).mean().item<float>();
    }
}
