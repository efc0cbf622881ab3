using System.Text;

namespace FastNotebooks.Notebooks;

/// <summary>Whole-file writes that a reader (or a killed writer) never sees half done.</summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="content"/> (UTF-8, no BOM) to a temporary file beside <paramref name="path"/>, then renames it over the target.</summary>
    public static void WriteAllText(string path, string content)
    {
        var full = Path.GetFullPath(path);
        var folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        // Same folder, so the rename stays on one file system and is atomic.
        var temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        File.WriteAllText(temp, content, new UTF8Encoding(false));
        File.Move(temp, full, overwrite: true);
    }
}
