using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Training;

/// <summary>
/// A checkpoint is a folder <c>checkpoint-{step}</c> holding the model, the optimizer state and the run's records;
/// the file <c>latest</c> names the newest complete one and is replaced atomically after the folder is written, so a
/// run killed at any moment resumes from a whole checkpoint.
/// </summary>
public static class Checkpoint
{
    const string Latest = "latest";

    public static void Save(string directory, long step, nn.Module model, TorchSharp.Modules.OptimizerHelper optimizer, TrainingRun run)
    {
        var folder = Path.Combine(directory, $"checkpoint-{step}");
        var partial = folder + ".partial";
        if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
        Directory.CreateDirectory(partial);
        model.save(Path.Combine(partial, "model.bin"));
        optimizer.save_state_dict(Path.Combine(partial, "optimizer.bin"));
        File.WriteAllText(Path.Combine(partial, "run.json"), JsonSerializer.Serialize(run));
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        Directory.Move(partial, folder);

        var pointer = Path.Combine(directory, Latest);
        File.WriteAllText(pointer + ".partial", Path.GetFileName(folder));
        File.Move(pointer + ".partial", pointer, overwrite: true);
        foreach (var old in Directory.GetDirectories(directory, "checkpoint-*").Where(d => d != folder && !d.EndsWith(".partial")))
            Directory.Delete(old, recursive: true);
    }

    /// <summary>Loads the newest checkpoint into model and optimizer; returns its records, or null when there is none.</summary>
    public static TrainingRun? TryLoad(string directory, nn.Module model, TorchSharp.Modules.OptimizerHelper optimizer)
    {
        var pointer = Path.Combine(directory, Latest);
        if (!File.Exists(pointer)) return null;
        var folder = Path.Combine(directory, File.ReadAllText(pointer).Trim());
        model.load(Path.Combine(folder, "model.bin"));
        optimizer.load_state_dict(Path.Combine(folder, "optimizer.bin"));
        return JsonSerializer.Deserialize<TrainingRun>(File.ReadAllText(Path.Combine(folder, "run.json")))
            ?? throw new InvalidDataException($"{folder}/run.json is empty.");
    }
}
