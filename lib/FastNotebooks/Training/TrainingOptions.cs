namespace FastNotebooks.Training;

/// <summary>Optimizer, schedule and bookkeeping of one training run.</summary>
public sealed record TrainingOptions
{
    public int Steps { get; init; } = 100;

    /// <summary>AdamW learning rate; the paper uses 5e-4 for MNIST and 1e-4 for the character LM.</summary>
    public double LearningRate { get; init; } = 5e-4;

    /// <summary>
    /// Linear warm-up from 0 over this many steps (0: none). Short schedules at a high rate need it: the first AdamW steps
    /// see poorly estimated second moments and can throw a fresh transformer off course.
    /// </summary>
    public int WarmupSteps { get; init; }

    /// <summary>After warm-up: a constant rate (the paper's scripts) or a cosine decay to <see cref="FinalRateFraction"/>.</summary>
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Constant;

    /// <summary>Where the cosine decay ends, as a fraction of <see cref="LearningRate"/>.</summary>
    public double FinalRateFraction { get; init; } = 0.1;

    /// <summary>
    /// Describes the settings a checkpoint must have been written with (model, data, schedule); a checkpoint written under
    /// another description or another library version is not resumed (see <see cref="Checkpoint"/>). Null: options only.
    /// </summary>
    public string? Fingerprint { get; init; }

    /// <summary>
    /// Everything that decides what a run computes, as one line (what a checkpoint must match to be resumed). The step count
    /// is part of it only under a decaying schedule, whose rates depend on it; at a constant rate a run may be extended.
    /// </summary>
    public string Settings => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{(Schedule == LearningRateSchedule.Constant ? "" : $"steps {Steps}; ")}lr {LearningRate}; warm-up {WarmupSteps}; {Schedule} to {FinalRateFraction}; wd {WeightDecay}; seed {Seed}; {Fingerprint}");

    /// <summary>The learning rate of step <paramref name="step"/> (0-based).</summary>
    public double RateAt(long step)
    {
        if (step < WarmupSteps) return LearningRate * (step + 1) / WarmupSteps;
        if (Schedule == LearningRateSchedule.Constant) return LearningRate;
        double progress = Math.Clamp((step - WarmupSteps) / (double)Math.Max(1, Steps - WarmupSteps), 0, 1);
        return LearningRate * (FinalRateFraction + (1 - FinalRateFraction) * 0.5 * (1 + Math.Cos(Math.PI * progress)));
    }

    /// <summary>AdamW weight decay; the paper's MNIST script uses 1e-3.</summary>
    public double WeightDecay { get; init; } = 1e-3;

    /// <summary>Seeds parameters' dropout draws and batches per step, so a resumed run repeats an uninterrupted one.</summary>
    public long Seed { get; init; }

    /// <summary>Evaluate every this many steps (and after the last); 0: only after the last.</summary>
    public int EvaluateEvery { get; init; }

    /// <summary>Write a checkpoint every this many steps (and after the last); 0: none. Needs OutputDirectory.</summary>
    public int CheckpointEvery { get; init; }

    /// <summary>Where metrics (CSV, JSON) and checkpoints go; null keeps everything in memory.</summary>
    public string? OutputDirectory { get; init; }

    /// <summary>Print a progress line every this many steps when the console is not interactive.</summary>
    public int LogEvery { get; init; } = 25;

    public void Validate()
    {
        if (Steps < 1) throw new ArgumentException($"Steps must be positive; got {Steps}.", nameof(Steps));
        if (!(LearningRate > 0)) throw new ArgumentException($"LearningRate must be positive; got {LearningRate}.", nameof(LearningRate));
        if (WarmupSteps < 0 || WarmupSteps >= Steps) throw new ArgumentException($"WarmupSteps must be in [0, Steps); got {WarmupSteps} with Steps {Steps}.", nameof(WarmupSteps));
        if (!(FinalRateFraction >= 0 && FinalRateFraction <= 1)) throw new ArgumentException($"FinalRateFraction must be in [0, 1]; got {FinalRateFraction}.", nameof(FinalRateFraction));
        if (CheckpointEvery > 0 && OutputDirectory is null)
            throw new ArgumentException($"CheckpointEvery {CheckpointEvery} needs an OutputDirectory.", nameof(CheckpointEvery));
    }
}

/// <summary>The learning rate after warm-up: constant, or a half cosine from the rate down to its final fraction.</summary>
public enum LearningRateSchedule { Constant, Cosine }

/// <summary>One optimizer step: training loss and accuracy on its batch, wall time and the process's peak memory.</summary>
public sealed record StepRecord(long Step, double Loss, double Accuracy, double Milliseconds, long PeakBytes);

/// <summary>One evaluation after <paramref name="Step"/> steps.</summary>
public sealed record EvaluationRecord(long Step, double Loss, double Accuracy);

/// <summary>Everything a run measured.</summary>
public sealed record TrainingRun(IReadOnlyList<StepRecord> Steps, IReadOnlyList<EvaluationRecord> Evaluations)
{
    public double StepsPerSecond => Steps.Count == 0 ? 0 : 1000.0 / Steps.Average(s => s.Milliseconds);
    public EvaluationRecord? Final => Evaluations.LastOrDefault();
}
