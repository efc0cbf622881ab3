using FastNotebooks.Data;

namespace FastNotebooks.Training;

/// <summary>
/// Where a full-profile training run keeps its checkpoints and metrics: <c>artifacts/runs/{experiment}/{variant}</c> at
/// the repository root. Full runs take hours, so they checkpoint there and running the notebook again resumes each
/// variant where it stopped (a finished one is read back, not retrained). Smoke and quick runs take seconds to minutes
/// and keep nothing: null.
/// </summary>
public static class RunDirectories
{
    /// <summary>Steps between checkpoints of a full run.</summary>
    public const int CheckpointEvery = 250;

    public static string? For(Profile profile, string experiment, string variant) => profile == Profile.Full
        ? Path.Combine(DataCache.RepositoryRoot, "artifacts", "runs", experiment, Safe(variant))
        : null;

    /// <summary>A variant name as a folder name: letters, digits and '-' kept, anything else becomes '-'.</summary>
    static string Safe(string name) => string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) || c == '-' ? c : '-')).Trim('-');
}
