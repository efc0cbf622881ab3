namespace FastNotebooks.Training;

/// <summary>Optimizer, schedule and bookkeeping of one training run.</summary>
public sealed record TrainingOptions
{
    public int Steps { get; init; } = 100;

    /// <summary>AdamW learning rate; the paper uses 5e-4 for MNIST and 1e-4 for the character LM.</summary>
    public double LearningRate { get; init; } = 5e-4;

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
        if (CheckpointEvery > 0 && OutputDirectory is null)
            throw new ArgumentException($"CheckpointEvery {CheckpointEvery} needs an OutputDirectory.", nameof(CheckpointEvery));
    }
}

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
