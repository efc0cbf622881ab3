using FastNotebooks.Data;
using FastNotebooks.Experiments;
using FastNotebooks.Models;
using FastNotebooks.Training;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Experiments;

public class MaskedLmExperimentTests
{
    [Fact]
    public void Masking_is_seeded_replaces_only_masked_positions_and_masks_each_row()
    {
        using var ids = randint(0, 10, new long[] { 50, 40 });
        var (input, masked) = MaskedLmExperiment.Mask(ids, 0.15, maskId: 10, seed: 7);
        var (again, _) = MaskedLmExperiment.Mask(ids, 0.15, maskId: 10, seed: 7);
        Assert.True(input.eq(again).all().item<bool>());
        Assert.True(input[masked].eq(10).all().item<bool>());
        Assert.True(input[masked.logical_not()].eq(ids[masked.logical_not()]).all().item<bool>());
        Assert.True(masked.any(1).all().item<bool>(), "every row needs a masked position");
        double rate = masked.to(float64).mean().item<double>();
        Assert.InRange(rate, 0.1, 0.2);
        Assert.Throws<ArgumentException>(() => MaskedLmExperiment.Mask(ids, 1.5, 10, 0));
    }

    [Theory]
    [InlineData("softmax")]
    [InlineData("fastmax2")]
    [InlineData("fma")]
    public void The_bidirectional_model_uses_the_right_context(string attention)
    {
        using var model = new MaskedCharModel(new TransformerConfig(16, 2, 1, 32, attention, MaxTokens: 64), vocabulary: 9);
        model.eval();
        using var ids = randint(0, 9, new long[] { 1, 64 });
        using var changed = ids.clone();
        changed[0, 40] = (changed[0, 40] + 1) % 9;
        using var before = model.forward(ids);
        using var after = model.forward(changed);
        Assert.Equal(new long[] { 1, 64, 9 }, before.shape);
        // Position 39 sees position 40 in a bidirectional model (it is in its near field for FMA).
        Assert.True((before[0, 39] - after[0, 39]).abs().max().item<float>() > 1e-6);
    }

    [Fact]
    public void Baselines_order_as_context_grows_and_training_runs_on_the_smoke_profile()
    {
        var corpus = new CharCorpus(SyntheticData.Text(20_000, 1));
        var settings = MaskedLmExperiment.For(Profile.Smoke, "softmax");
        var b = MaskedLmExperiment.Baselines(corpus, settings);
        Assert.True(b.Unigram > b.LeftNeighbour && b.LeftNeighbour > b.BothNeighbours, b.ToString());
        var run = MaskedLmExperiment.Train("softmax", Profile.Smoke, corpus);
        Assert.Equal(settings.Steps, run.Run.Steps.Count);
        Assert.True(double.IsFinite(run.BitsPerCharacter) && run.BitsPerCharacter > 0);
        Assert.Equal(run.ValidationLoss / Math.Log(2), run.BitsPerCharacter, 12);
    }
}
