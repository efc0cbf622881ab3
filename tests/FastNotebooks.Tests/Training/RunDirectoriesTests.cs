using System.Text.Json;
using FastNotebooks.Data;
using FastNotebooks.Experiments;
using FastNotebooks.Training;

namespace FastNotebooks.Tests.Training;

[Collection("Global torch generator")]
public class RunDirectoriesTests
{
    [Fact]
    public void Only_full_runs_get_a_directory_and_its_name_is_a_safe_folder()
    {
        Assert.Null(RunDirectories.For(Profile.Smoke, "06-dropout", "x"));
        Assert.Null(RunDirectories.For(Profile.Quick, "06-dropout", "x"));
        var full = RunDirectories.For(Profile.Full, "06-dropout", "fastmax2, quadratic-term dropout")!;
        Assert.Equal(Path.Combine("artifacts", "runs", "06-dropout", "fastmax2--quadratic-term-dropout"),
            Path.GetRelativePath(DataCache.RepositoryRoot, full));
    }

    [Fact]
    public void A_dropout_variant_writes_its_outcome_and_a_second_call_resumes_instead_of_retraining()
    {
        var (images, labels) = SyntheticData.Digits(96, 1);
        var (testImages, testLabels) = SyntheticData.Digits(32, 2);
        var (train, test) = (new ImageBatches(images, labels), new ImageBatches(testImages, testLabels));
        var variant = DropoutExperiment.Sweep(Profile.Smoke)[2];
        var folder = Path.Combine(Path.GetTempPath(), $"dropout-{Guid.NewGuid():N}");

        var first = DropoutExperiment.Train(variant, Profile.Smoke, train, test, outputDirectory: folder);
        using var saved = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, DropoutExperiment.OutcomeFile)));
        Assert.Equal(variant.Name, saved.RootElement.GetProperty("Variant").GetString());
        Assert.Equal(first.TrainAccuracy, saved.RootElement.GetProperty("TrainAccuracy").GetDouble());
        Assert.Equal(first.TestAccuracy, saved.RootElement.GetProperty("TestAccuracy").GetDouble());

        var again = DropoutExperiment.Train(variant, Profile.Smoke, train, test, outputDirectory: folder);
        Assert.Equal(first.Run.Steps.Select(s => s.Milliseconds), again.Run.Steps.Select(s => s.Milliseconds)); // read back, not retimed
        Assert.Equal(first.TrainAccuracy, again.TrainAccuracy);
        Assert.Equal(first.TestAccuracy, again.TestAccuracy);
        Directory.Delete(folder, recursive: true);
    }
}
