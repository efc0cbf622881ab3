using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Tests.Running;

/// <summary>
/// A training run killed outright (its process tree killed, as SIGKILL would, as soon as its first checkpoint is
/// complete: an event, not a clock) and started again resumes from its last checkpoint and produces the uninterrupted
/// run's losses exactly. The first run cannot finish before it is killed, however the machine schedules it: it stops
/// for good in step <c>blockAt</c>, three steps after that checkpoint.
/// </summary>
public class KilledTrainingTests
{
    const int Steps = 30, CheckpointEvery = 7, BlockAt = 10;

    static readonly string Training = """
        using FastNotebooks.Data;
        using FastNotebooks.Models;
        using FastNotebooks.Training;
        var corpus = new CharCorpus(string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog. ", 40)));
        manual_seed(0);
        var model = new CharLanguageModel(new TransformerConfig(16, 2, 1, 32, "fastmax2", Dropout: 0.1, MaxTokens: 16), corpus.Vocabulary.Length);
        var options = new TrainingOptions { Steps = steps, LearningRate = 3e-3, Seed = 5, CheckpointEvery = checkpointEvery, OutputDirectory = folder, LogEvery = 100 };
        new Trainer(model, options).Run(step =>
        {
            if (step == blockAt) System.Threading.Thread.Sleep(System.Threading.Timeout.Infinite);   // only the run to be killed
            var (inputs, targets, _) = corpus.Batch(false, 4, 16, seed: 1, step);
            return (nn.functional.cross_entropy(model.forward(inputs).flatten(0, 1), targets.flatten()), 0.0);
        });
        """;

    [Fact]
    public void A_killed_run_resumes_to_the_uninterrupted_losses()
    {
        var source = TestNotebooks.Write(TestNotebooks.Make(
            TestNotebooks.Parameters($"var folder = \"\";\nvar steps = {Steps};\nvar checkpointEvery = {CheckpointEvery};\nvar blockAt = -1;"),
            Cell.Code(Training)), "train.ipynb");
        var root = Path.GetDirectoryName(source)!;
        string interrupted = Path.Combine(root, "interrupted"), straight = Path.Combine(root, "straight");
        try
        {
            // Killed once the trainer has written its first whole checkpoint (the "latest" pointer is renamed into place last).
            Directory.CreateDirectory(interrupted);
            var killed = Cli.RunUntil(() => File.Exists(Path.Combine(interrupted, "latest")), interrupted,
                "run", source, "-p", $"folder={interrupted}", "-p", $"blockAt={BlockAt}", "--output", Path.Combine(root, "out1"));
            Assert.True(killed.Killed, $"the first run ended by itself before its first checkpoint:\n{killed.Stdout}\n{killed.Stderr}");
            Assert.False(File.Exists(Path.Combine(interrupted, "steps.csv")), "the first run finished before it was killed");

            var resumed = Cli.Run("run", source, "-p", $"folder={interrupted}", "--output", Path.Combine(root, "out2"));
            var uninterrupted = Cli.Run("run", source, "-p", $"folder={straight}", "--output", Path.Combine(root, "out3"));
            Assert.True(resumed.ExitCode == 0, resumed.Stderr);
            Assert.True(uninterrupted.ExitCode == 0, uninterrupted.Stderr);
            var outputs = string.Concat(NotebookJson.Load(Path.Combine(root, "out2", "train.ipynb")).Cells.Last().Outputs.Select(o => o.Text));
            Assert.Contains($"resuming after step {CheckpointEvery} ", outputs);

            Assert.Equal(Losses(straight), Losses(interrupted));
            Assert.Equal(Steps, Losses(straight).Length);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    // The loss column as written: exact text, so equality means bit-identical doubles.
    static string[] Losses(string folder) =>
        File.ReadLines(Path.Combine(folder, "steps.csv")).Skip(1).Select(line => line.Split(',')[1]).ToArray();
}
