using FastNotebooks.Data;
using FastNotebooks.Models;
using FastNotebooks.Training;
using static TorchSharp.torch;

namespace FastNotebooks.Experiments;

/// <summary>One trained image classifier: its run, final test accuracy and the model (for attention maps).</summary>
public sealed record ImageRun(string Attention, TrainingRun Run, double TestAccuracy, ImageClassifier Model);

/// <summary>
/// The paper's MNIST experiment (FAST, arXiv 2402.07901, its MNIST experiment): the 4×4-patch transformer trained with AdamW (lr 5e-4, wd 1e-3, batch 128,
/// 10 epochs in full). Quick trains the paper's model on a reduced schedule; smoke a tiny model on a few batches.
/// </summary>
public static class MnistExperiment
{
    /// <summary>Sizes of one profile: model, steps, batch, and how many train/test images are used.</summary>
    public sealed record Settings(TransformerConfig Model, int Steps, int Batch, int TrainImages, int TestImages);

    public static Settings For(Profile profile, string attention) => profile.Pick(
        smoke: new Settings(new TransformerConfig(32, 2, 1, 64, attention, MaxTokens: 50), 15, 16, 512, 256),
        quick: new Settings(TransformerConfig.PaperMnist(attention), 150, 32, 60_000, 1_000),
        full: new Settings(TransformerConfig.PaperMnist(attention), 10 * 60_000 / 128, 128, 60_000, 10_000));

    /// <summary>
    /// Train and test images: the real MNIST (or Fashion-MNIST) — fetched on first use — except in a smoke run without
    /// cached data, which uses <see cref="SyntheticData.Digits"/> and says so.
    /// </summary>
    public static (ImageBatches Train, ImageBatches Test, string Source) Load(Profile profile, bool fashion = false)
    {
        var files = fashion ? Datasets.FashionMnistFiles : Datasets.MnistFiles;
        var settings = For(profile, "softmax");
        if (profile == Profile.Smoke && !Datasets.IsCached(files))
        {
            var (trainImages, trainLabels) = SyntheticData.Digits(settings.TrainImages, 1);
            var (testImages, testLabels) = SyntheticData.Digits(settings.TestImages, 2);
            return (new ImageBatches(trainImages, trainLabels), new ImageBatches(testImages, testLabels),
                "synthetic bar images (smoke profile, no cached MNIST: nothing was downloaded)");
        }
        var data = fashion ? Datasets.FashionMnist() : Datasets.Mnist();
        return (new ImageBatches(data.TrainImages, data.TrainLabels, settings.TrainImages),
                new ImageBatches(data.TestImages, data.TestLabels, settings.TestImages), fashion ? "Fashion-MNIST" : "MNIST");
    }

    public static ImageRun Train(string attention, Profile profile, ImageBatches train, ImageBatches test,
        TransformerConfig? model = null, string? outputDirectory = null, long seed = 0, int? steps = null, int? batch = null)
    {
        var settings = For(profile, attention);
        if (batch is { } size) settings = settings with { Batch = size };
        manual_seed(seed);
        var classifier = new ImageClassifier(model ?? settings.Model);
        var options = new TrainingOptions
        {
            Steps = steps ?? settings.Steps, LearningRate = 5e-4, WeightDecay = 1e-3, Seed = seed,
            EvaluateEvery = Math.Max(1, (steps ?? settings.Steps) / 5), OutputDirectory = outputDirectory, LogEvery = 50,
            CheckpointEvery = outputDirectory is null ? 0 : RunDirectories.CheckpointEvery,
        };
        var run = new Trainer(classifier, options).Run(step =>
        {
            var (images, labels) = train.Batch(settings.Batch, seed, step);
            var logits = classifier.forward(images);
            return (nn.functional.cross_entropy(logits, labels), Accuracy(logits, labels));
        }, () => Evaluate(classifier, test, settings.Batch), attention);
        return new ImageRun(attention, run, run.Final?.Accuracy ?? double.NaN, classifier);
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
