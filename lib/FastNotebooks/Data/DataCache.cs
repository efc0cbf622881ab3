using System.Security.Cryptography;

namespace FastNotebooks.Data;

/// <summary>
/// Where fetched data lives: <c>data/</c> at the repository root (found by walking up to FastNotebooks.sln), or the
/// folder in the FASTNOTEBOOKS_DATA environment variable. Files are written atomically (temp file, then rename) and
/// checked against their SHA-256 before use.
/// </summary>
public static class DataCache
{
    public const string EnvironmentVariable = "FASTNOTEBOOKS_DATA";

    public static string Root
    {
        get
        {
            var configured = Environment.GetEnvironmentVariable(EnvironmentVariable);
            if (!string.IsNullOrEmpty(configured)) return Directory.CreateDirectory(configured).FullName;
            return Directory.CreateDirectory(Path.Combine(RepositoryRoot, "data")).FullName;
        }
    }

    /// <summary>The nearest folder above the current one that holds FastNotebooks.sln, or the current folder.</summary>
    public static string RepositoryRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir != null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "FastNotebooks.sln"))) return dir.FullName;
            return Environment.CurrentDirectory;
        }
    }

    public static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Writes through a temporary file in the same folder and renames it into place.</summary>
    public static void WriteAtomically(string path, Action<Stream> write)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temp = path + ".partial";
        try
        {
            using (var stream = File.Create(temp)) write(stream);
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            // A failed write leaves neither a partial file nor a damaged target behind.
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>True when the file exists and has the expected hash; a mismatching file is deleted so it is fetched again.</summary>
    public static bool IsValid(string path, string sha256)
    {
        if (!File.Exists(path)) return false;
        if (string.Equals(Sha256(path), sha256, StringComparison.OrdinalIgnoreCase)) return true;
        Console.Error.WriteLine($"{Path.GetFileName(path)}: checksum mismatch (corrupt or truncated); fetching it again.");
        File.Delete(path);
        return false;
    }
}
