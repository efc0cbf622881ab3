using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using FastNotebooks.Bench;
using FastNotebooks.Data;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Training;

/// <summary>
/// Trains a model with AdamW. The caller supplies the loss of step t (building batch t itself, as a pure function of
/// the step); the trainer seeds torch's generator per step, checkpoints, evaluates, and writes metrics as CSV and
/// JSON. A run resumed from a checkpoint continues exactly as the uninterrupted run would have.
/// </summary>
public sealed class Trainer(nn.Module model, TrainingOptions options)
{
    /// <param name="lossAt">The loss tensor and batch accuracy of step t (model in training mode).</param>
    /// <param name="evaluate">Validation loss and accuracy (called in eval mode without gradients); optional.</param>
    /// <param name="label">Shown in progress output.</param>
    public TrainingRun Run(Func<long, (Tensor Loss, double Accuracy)> lossAt, Func<(double Loss, double Accuracy)>? evaluate = null, string label = "train")
    {
        options.Validate();
        using var optimizer = optim.AdamW(model.parameters(), options.LearningRate, weight_decay: options.WeightDecay);
        var steps = new List<StepRecord>();
        var evaluations = new List<EvaluationRecord>();
        if (options.OutputDirectory is { } directory && Checkpoint.TryLoad(directory, model, optimizer, options.Settings) is { } resumed)
        {
            steps.AddRange(resumed.Steps);
            evaluations.AddRange(resumed.Evaluations);
            Console.WriteLine($"{label}: resuming after step {steps.Count} from {directory}");
        }

        void Train(Action<StepRecord> report)
        {
            for (long step = steps.Count; step < options.Steps; step++)
            {
                if (Interruption.Requested)
                {
                    // Stopped from outside (a kernel interrupt): keep every finished step for a resume.
                    if (options.OutputDirectory != null && step > 0)
                        Checkpoint.Save(options.OutputDirectory, step, model, optimizer, new TrainingRun(steps, evaluations), options.Settings);
                    Interruption.ThrowIfRequested();
                }
                var record = Step(step, optimizer, lossAt);
                steps.Add(record);
                report(record);
                bool last = step + 1 == options.Steps;
                if (evaluate != null && (last || options.EvaluateEvery > 0 && (step + 1) % options.EvaluateEvery == 0))
                    evaluations.Add(Evaluate(step + 1, evaluate));
                if (options.OutputDirectory != null && (last || options.CheckpointEvery > 0 && (step + 1) % options.CheckpointEvery == 0))
                    Checkpoint.Save(options.OutputDirectory, step + 1, model, optimizer, new TrainingRun(steps, evaluations), options.Settings);
            }
        }

        if (!Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive)
            AnsiConsole.Progress().Start(context =>
            {
                var task = context.AddTask(label, maxValue: options.Steps);
                task.Value = steps.Count;
                Train(r => { task.Value = r.Step + 1; task.Description = $"{label} loss {r.Loss:F3} acc {r.Accuracy:P0}"; });
            });
        else
            Train(r =>
            {
                if ((r.Step + 1) % Math.Max(1, options.LogEvery) == 0 || r.Step + 1 == options.Steps)
                    Console.WriteLine($"{label}: step {r.Step + 1}/{options.Steps} loss {r.Loss:F4} acc {r.Accuracy:P1} ({1000 / r.Milliseconds:F1} steps/s)");
            });

        var run = new TrainingRun(steps, evaluations);
        if (options.OutputDirectory != null) WriteMetrics(options.OutputDirectory, run);
        return run;
    }

    StepRecord Step(long step, TorchSharp.Modules.OptimizerHelper optimizer, Func<long, (Tensor Loss, double Accuracy)> lossAt)
    {
        using var scope = NewDisposeScope();
        manual_seed(Seeds.Mix(options.Seed, step));
        var clock = Stopwatch.StartNew();
        model.train();
        double rate = options.RateAt(step);
        foreach (var group in optimizer.ParamGroups) group.LearningRate = rate;
        optimizer.zero_grad();
        var (loss, accuracy) = lossAt(step);
        loss.backward();
        optimizer.step();
        double value = loss.item<float>();
        NativeHeap.ReleaseUnownedNativeObjects();
        if (!double.IsFinite(value))
            throw new InvalidOperationException($"step {step}: the loss is {value}; lower the learning rate or check the inputs.");
        return new StepRecord(step, value, accuracy, clock.Elapsed.TotalMilliseconds, ProcessMemory.PeakBytes() ?? 0);
    }

    EvaluationRecord Evaluate(long step, Func<(double Loss, double Accuracy)> evaluate)
    {
        model.eval();
        using var noGrad = no_grad();
        var (loss, accuracy) = evaluate();
        return new EvaluationRecord(step, loss, accuracy);
    }

    static void WriteMetrics(string directory, TrainingRun run)
    {
        Directory.CreateDirectory(directory);
        var csv = new StringBuilder("step,loss,accuracy,milliseconds,peak_bytes\n");
        foreach (var s in run.Steps)
            csv.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{s.Step},{s.Loss},{s.Accuracy},{s.Milliseconds},{s.PeakBytes}"));
        WriteAtomically(Path.Combine(directory, "steps.csv"), csv.ToString());
        WriteAtomically(Path.Combine(directory, "run.json"), JsonSerializer.Serialize(run, new JsonSerializerOptions { WriteIndented = true }));
    }

    static void WriteAtomically(string path, string text)
    {
        File.WriteAllText(path + ".partial", text);
        File.Move(path + ".partial", path, overwrite: true);
    }
}
