using FastNotebooks.Experiments;
using FastNotebooks.Models;
using FastNotebooks.Training;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Experiments;

public class LraTasksTests
{
    [Theory]
    [InlineData(LraTask.ListOps)]
    [InlineData(LraTask.Pathfinder)]
    [InlineData(LraTask.Retrieval)]
    [InlineData(LraTask.Text)]
    public void Smoke_tasks_have_full_length_sequences_and_valid_labels(LraTask task)
    {
        Environment.SetEnvironmentVariable(FastNotebooks.Data.DataCache.EnvironmentVariable, Path.Combine(Path.GetTempPath(), "fastnotebooks-empty-cache"));
        var data = LraTasks.Make(task, Profile.Smoke);
        Assert.NotEmpty(data.Train);
        Assert.NotEmpty(data.Test);
        foreach (var example in data.Train.Concat(data.Test))
        {
            Assert.Equal(data.Length, example.Tokens.Length);
            Assert.InRange(example.Label, 0, data.Classes - 1);
            Assert.All(example.Tokens, t => Assert.InRange(t, 0, data.Vocabulary - 1));
            Assert.Equal(task == LraTask.Retrieval, example.Second is not null);
        }
        Assert.True(data.Train.Select(e => e.Label).Distinct().Count() > 1, "a task needs more than one class in training");
    }

    [Theory]
    [InlineData("softmax", false)]
    [InlineData("fastmax2", true)]
    [InlineData("fma", false)]
    public void Sequence_classifier_gives_class_logits(string attention, bool pairs)
    {
        using var model = new SequenceClassifier(new TransformerConfig(16, 2, 1, 32, attention, MaxTokens: 64), vocabulary: 20, classes: 3, pairs);
        using var ids = randint(1, 20, new long[] { 2, 64 });
        using var logits = model.forward(ids, pairs ? ids.flip(1) : null);
        Assert.Equal(new long[] { 2, 3 }, logits.shape);
    }
}
