using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Data;
using FastNotebooks.Models;
using FastNotebooks.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Training;

/// <summary>Tests that seed torch's global generator must not share it with tests running in parallel.</summary>
[CollectionDefinition("Global torch generator", DisableParallelization = true)]
public sealed class GlobalGeneratorCollection;

[Collection("Global torch generator")]
public class TrainerTests
{
    static readonly CharCorpus Corpus = new(string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog. ", 40)));

    static CharLanguageModel NewModel(long seed)
    {
        manual_seed(seed);
        return new CharLanguageModel(new TransformerConfig(16, 2, 1, 32, "fastmax2", Dropout: 0.1, MaxTokens: 16), Corpus.Vocabulary.Length);
    }

    static Func<long, (Tensor, double)> LossOf(CharLanguageModel model) => step =>
    {
        var (inputs, targets, _) = Corpus.Batch(false, 4, 16, seed: 1, step);
        var logits = model.forward(inputs);
        return (nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten()), 0.0);
    };

    [Fact]
    public void Resuming_from_a_checkpoint_repeats_the_uninterrupted_losses()
    {
        var options = new TrainingOptions { Steps = 8, LearningRate = 3e-3, Seed = 5 };
        using var straightModel = NewModel(0);
        var straight = new Trainer(straightModel, options).Run(LossOf(straightModel));
        options = options with { CheckpointEvery = 3 };

        var folder = Path.Combine(Path.GetTempPath(), $"resume-{Guid.NewGuid():N}");
        using (var first = NewModel(0))
            new Trainer(first, options with { Steps = 5, OutputDirectory = folder }).Run(LossOf(first));  // stops after step 5; last checkpoint at 5
        using var second = NewModel(99);                                                               // different initial weights: all must come from the checkpoint
        var resumed = new Trainer(second, options with { OutputDirectory = folder }).Run(LossOf(second));

        Assert.Equal(straight.Steps.Select(s => s.Loss), resumed.Steps.Select(s => s.Loss));
        Assert.True(File.Exists(Path.Combine(folder, "steps.csv")));
        Assert.True(File.Exists(Path.Combine(folder, "run.json")));
    }

    [Fact]
    public void An_interrupted_run_stops_at_the_next_step_keeps_its_steps_and_resumes_exactly()
    {
        var options = new TrainingOptions { Steps = 8, LearningRate = 3e-3, Seed = 5 };
        using var straightModel = NewModel(0);
        var straight = new Trainer(straightModel, options).Run(LossOf(straightModel));

        var folder = Path.Combine(Path.GetTempPath(), $"interrupt-{Guid.NewGuid():N}");
        using var first = NewModel(0);
        var loss = LossOf(first);
        try
        {
            // No checkpoint schedule: only the interrupt saves one.
            Assert.Throws<OperationCanceledException>(() => new Trainer(first, options with { OutputDirectory = folder }).Run(step =>
            {
                if (step == 3) Interruption.Request();
                return loss(step);
            }));
        }
        finally
        {
            Interruption.Reset();
        }
        Assert.True(Directory.Exists(Path.Combine(folder, "checkpoint-4")), "the interrupt saves the four finished steps");
        using var second = NewModel(99);
        var resumed = new Trainer(second, options with { OutputDirectory = folder }).Run(LossOf(second));

        Assert.Equal(straight.Steps.Select(s => s.Loss), resumed.Steps.Select(s => s.Loss));
    }

    [Fact]
    public void Char_lm_on_real_text_runs_the_factorized_kernel_checkpoints_and_resumes_exactly()
    {
        // Moby-Dick from the repository's fixture, through the cache's reader and hash check.
        var corpus = new CharCorpus(DataFixture.MobyDick());
        const int context = 96, batch = 2;
        var config = new TransformerConfig(16, 2, 1, 32, "fastmax2", MaxTokens: context);
        // The premise: at this length the models' Auto choice is the factorized (chunked causal) kernel, not the N×N form.
        Assert.Equal(FastmaxAlgorithm.Factorized,
            FastmaxDispatch.Algorithm(FastmaxAlgorithm.Auto, 2, causal: true, heads: batch * config.Heads, nq: context, nk: context, d: config.HeadDim));
        CharLanguageModel Model(long seed) { manual_seed(seed); return new CharLanguageModel(config, corpus.Vocabulary.Length); }
        Func<long, (Tensor, double)> Loss(CharLanguageModel model) => step =>
        {
            var (inputs, targets, _) = corpus.Batch(false, batch, context, seed: 3, step);
            return (nn.functional.cross_entropy(model.forward(inputs).flatten(0, 1), targets.flatten()), 0.0);
        };
        var options = new TrainingOptions { Steps = 6, LearningRate = 3e-3, Seed = 7 };
        using var straightModel = Model(0);
        var straight = new Trainer(straightModel, options).Run(Loss(straightModel));

        var folder = Path.Combine(Path.GetTempPath(), $"fixture-resume-{Guid.NewGuid():N}");
        try
        {
            using (var first = Model(0))
                new Trainer(first, options with { Steps = 4, CheckpointEvery = 2, OutputDirectory = folder }).Run(Loss(first));
            Assert.True(Directory.Exists(Path.Combine(folder, "checkpoint-4")), "the first run leaves its checkpoint after step 4");
            using var second = Model(99);   // other weights: everything must come from the checkpoint
            var resumed = new Trainer(second, options with { CheckpointEvery = 2, OutputDirectory = folder }).Run(Loss(second));

            Assert.All(straight.Steps, s => Assert.True(double.IsFinite(s.Loss), $"step {s.Step}: loss {s.Loss}"));
            Assert.Equal(straight.Steps.Select(s => s.Loss), resumed.Steps.Select(s => s.Loss));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void An_optimizer_step_lowers_the_loss_on_a_fixed_batch()
    {
        using var model = NewModel(1);
        model.eval();
        var (inputs, targets, _) = Corpus.Batch(false, 4, 16, seed: 1, step: 0);
        double Loss() { using var noGrad = no_grad(); return nn.functional.cross_entropy(model.forward(inputs).flatten(0, 1), targets.flatten()).item<float>(); }
        double before = Loss();
        new Trainer(model, new TrainingOptions { Steps = 1, LearningRate = 1e-2 }).Run(_ => (nn.functional.cross_entropy(model.forward(inputs).flatten(0, 1), targets.flatten()), 0));
        model.eval();
        Assert.True(Loss() < before, $"loss {before} did not fall");
    }
}

public class CharCorpusTests
{
    [Fact]
    public void Windows_never_cross_the_split()
    {
        var text = new string(Enumerable.Range(0, 2000).Select(i => (char)('a' + i % 26)).ToArray());
        var corpus = new CharCorpus(text, validationFraction: 0.2);
        Assert.Equal(1600, corpus.SplitPosition);
        Assert.Equal(text.Length, corpus.Train.Length + corpus.Validation.Length);
        for (long step = 0; step < 50; step++)
        {
            var (_, _, trainStarts) = corpus.Batch(false, 8, 32, seed: 2, step);
            var (_, _, validationStarts) = corpus.Batch(true, 8, 32, seed: 2, step);
            Assert.All(trainStarts, s => Assert.True(s + 32 < corpus.SplitPosition, $"training window at {s} reaches the validation text"));
            Assert.All(validationStarts, s => Assert.InRange(s + 32, 0, corpus.Validation.Length - 1));
        }
    }

    [Fact]
    public void Targets_are_inputs_shifted_by_one_and_batches_repeat_per_step()
    {
        var corpus = new CharCorpus("abcdefghijklmnopqrstuvwxyz0123456789", 0.25);
        var (inputs, targets, starts) = corpus.Batch(false, 3, 5, seed: 7, step: 4);
        Assert.Equal(corpus.Decode(inputs[0].data<long>().ToArray())[1..], corpus.Decode(targets[0].data<long>().ToArray())[..^1]);
        Assert.Equal(starts, corpus.Batch(false, 3, 5, seed: 7, step: 4).Starts);
        Assert.NotEqual(starts, corpus.Batch(false, 3, 5, seed: 7, step: 5).Starts);
    }
}
