using FastNotebooks.Training;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Training;

public class ScheduleAndSettingsTests
{
    [Fact]
    public void Warm_up_rises_linearly_then_the_cosine_falls_to_its_final_fraction()
    {
        var options = new TrainingOptions { Steps = 110, LearningRate = 2e-3, WarmupSteps = 10, Schedule = LearningRateSchedule.Cosine, FinalRateFraction = 0.1 };
        Assert.Equal(2e-4, options.RateAt(0), 15);
        Assert.Equal(1e-3, options.RateAt(4), 15);
        Assert.Equal(2e-3, options.RateAt(10), 15);
        Assert.Equal(2e-3 * (0.1 + 0.9 * 0.5), options.RateAt(60), 15);   // half-way through the decay
        Assert.Equal(2e-4, options.RateAt(110), 15);
        for (int s = 11; s < 110; s++) Assert.True(options.RateAt(s) < options.RateAt(s - 1), $"step {s}");
    }

    [Fact]
    public void A_constant_schedule_keeps_the_rate_after_warm_up()
    {
        var options = new TrainingOptions { Steps = 50, LearningRate = 1e-3, WarmupSteps = 5 };
        Assert.Equal(1e-3, options.RateAt(5));
        Assert.Equal(1e-3, options.RateAt(49));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(50)]
    public void Warm_up_outside_the_run_is_rejected(int warmup)
    {
        var e = Assert.Throws<ArgumentException>(() => new TrainingOptions { Steps = 50, WarmupSteps = warmup }.Validate());
        Assert.Contains("WarmupSteps", e.Message);
        Assert.Contains(warmup.ToString(), e.Message);
    }

    [Fact]
    public void A_checkpoint_written_under_other_settings_is_moved_aside_not_resumed()
    {
        var root = Directory.CreateTempSubdirectory("fastnotebooks-settings-").FullName;
        try
        {
            var directory = Path.Combine(root, "run");
            var model = nn.Linear(3, 2);
            var first = new TrainingOptions { Steps = 4, LearningRate = 1e-2, OutputDirectory = directory, CheckpointEvery = 2, Fingerprint = "width 3" };
            new Trainer(model, first).Run(_ => (model.forward(ones(4, 3)).square().mean(), 0));
            Assert.True(File.Exists(Path.Combine(directory, "latest")));

            // Same settings: resumed, nothing retrained.
            var again = new Trainer(model, first).Run(_ => throw new InvalidOperationException("a finished run must not train again"));
            Assert.Equal(4, again.Steps.Count);

            // Other settings: the old folder moves aside and the run starts from step 0.
            int trained = 0;
            var changed = first with { Fingerprint = "width 4" };
            var fresh = new Trainer(model, changed).Run(_ => { trained++; return (model.forward(ones(4, 3)).square().mean(), 0); });
            Assert.Equal(4, trained);
            Assert.Equal(4, fresh.Steps.Count);
            Assert.Single(Directory.GetDirectories(root, "run.stale-*"));
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
