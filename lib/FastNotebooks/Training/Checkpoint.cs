using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Training;

/// <summary>
/// A checkpoint is a folder <c>checkpoint-{step}</c> holding the model, the optimizer state and the run's records;
/// the file <c>latest</c> names the newest complete one and is replaced atomically after the folder is written, so a
/// run killed at any moment resumes from a whole checkpoint. Each checkpoint also holds <c>settings.txt</c>, the settings
/// and library version it was written under; a checkpoint whose settings differ from the current ones is never resumed
/// (its folder is moved aside with a message), so a recorded result never comes from a stale run.
/// </summary>
public static class Checkpoint
{
    const string Latest = "latest";
    const string SettingsFile = "settings.txt";

    /// <summary>The library's version: bumped when a change alters what a training run computes.</summary>
    public static string LibraryVersion { get; } =
        typeof(Checkpoint).Assembly.GetName().Version?.ToString() ?? "unknown";

    public static void Save(string directory, long step, nn.Module model, TorchSharp.Modules.OptimizerHelper optimizer, TrainingRun run, string settings = "")
    {
        var folder = Path.Combine(directory, $"checkpoint-{step}");
        var partial = folder + ".partial";
        if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
        Directory.CreateDirectory(partial);
        model.save(Path.Combine(partial, "model.bin"));
        optimizer.save_state_dict(Path.Combine(partial, "optimizer.bin"));
        File.WriteAllText(Path.Combine(partial, "run.json"), JsonSerializer.Serialize(run));
        File.WriteAllText(Path.Combine(partial, SettingsFile), Stamp(settings));
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        Directory.Move(partial, folder);

        var pointer = Path.Combine(directory, Latest);
        File.WriteAllText(pointer + ".partial", Path.GetFileName(folder));
        File.Move(pointer + ".partial", pointer, overwrite: true);
        foreach (var old in Directory.GetDirectories(directory, "checkpoint-*").Where(d => d != folder && !d.EndsWith(".partial")))
            Directory.Delete(old, recursive: true);
    }

    /// <summary>
    /// Loads the newest checkpoint into model and optimizer and returns its records; null when there is none, or when it
    /// was written under other settings or another library version — then the run folder is moved aside to
    /// <c>{directory}.stale-{time}</c> with a message, and the run starts afresh.
    /// </summary>
    public static TrainingRun? TryLoad(string directory, nn.Module model, TorchSharp.Modules.OptimizerHelper optimizer, string settings = "")
    {
        var pointer = Path.Combine(directory, Latest);
        if (!File.Exists(pointer)) return null;
        var folder = Path.Combine(directory, File.ReadAllText(pointer).Trim());
        var written = Path.Combine(folder, SettingsFile);
        var stored = File.Exists(written) ? File.ReadAllText(written) : "(no settings recorded)";
        if (stored != Stamp(settings))
        {
            var aside = $"{directory.TrimEnd(Path.DirectorySeparatorChar)}.stale-{DateTime.UtcNow:yyyyMMddHHmmss}";
            Directory.Move(directory, aside);
            Console.WriteLine($"{directory}: not resumed, its checkpoint was written under other settings; moved to {aside}." +
                $"{Environment.NewLine}  then: {stored}{Environment.NewLine}  now:  {Stamp(settings)}");
            return null;
        }
        model.load(Path.Combine(folder, "model.bin"));
        optimizer.load_state_dict(Path.Combine(folder, "optimizer.bin"));
        return JsonSerializer.Deserialize<TrainingRun>(File.ReadAllText(Path.Combine(folder, "run.json")))
            ?? throw new InvalidDataException($"{folder}/run.json is empty.");
    }

    static string Stamp(string settings) => $"library {LibraryVersion}; {settings}";
}
