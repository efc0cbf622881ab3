using System.Diagnostics;
using System.Text.Json.Nodes;
using FastNotebooks.Notebooks.Ipynb;
using FastNotebooks.Notebooks.Running;

namespace FastNotebooks.Notebooks.Tests;

/// <summary>Tiny notebooks written by the tests themselves, in temporary folders.</summary>
public static class TestNotebooks
{
    /// <summary>A notebook in the .NET Interactive dialect with the given cells.</summary>
    public static Notebook Make(params Cell[] cells)
    {
        var notebook = new Notebook();
        notebook.Metadata["kernelspec"] = new JsonObject { ["display_name"] = ".NET (C#)", ["language"] = "C#", ["name"] = ".net-csharp" };
        notebook.Metadata["language_info"] = new JsonObject { ["name"] = "C#" };
        notebook.Cells.AddRange(cells);
        return notebook;
    }

    /// <summary>The parameters cell every notebook has, with extra declarations.</summary>
    public static Cell Parameters(string extra = "") => Cell.Code("var profile = \"quick\";" + (extra.Length > 0 ? "\n" + extra : ""), ParameterInjection.ParametersTag);

    /// <summary>Writes <paramref name="notebook"/> as <paramref name="name"/> in a fresh temporary folder; returns its path.</summary>
    public static string Write(Notebook notebook, string name = "test.ipynb", string? folder = null)
    {
        folder ??= NewFolder();
        var path = Path.Combine(folder, name);
        NotebookJson.Save(notebook, path);
        return path;
    }

    /// <summary>A fresh temporary folder.</summary>
    public static string NewFolder() => Directory.CreateTempSubdirectory("fastnotebooks-test-").FullName;
}

/// <summary>The runner's real command line, started as a process exactly as a user would.</summary>
public static class Cli
{
    /// <summary>Exit code, stdout and stderr of one CLI invocation.</summary>
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>Runs <c>FastNotebooks.Notebooks</c> with <paramref name="args"/>.</summary>
    public static Result Run(params string[] args)
    {
        var (host, prefix) = ChildProcess.SelfCommand();
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in prefix.Concat(args)) start.ArgumentList.Add(a);
        // Spectre sizes tables to the terminal; a fixed width keeps rows on one line in the captured text.
        start.Environment["COLUMNS"] = "200";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"CLI {string.Join(' ', args)} did not exit within 5 minutes");
        }
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }
}

/// <summary>Paths in this repository.</summary>
public static class Repo
{
    /// <summary>The folder holding FastNotebooks.sln, found by walking up from the test's output folder.</summary>
    public static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "FastNotebooks.sln"))) return dir.FullName;
            throw new DirectoryNotFoundException($"no FastNotebooks.sln above {AppContext.BaseDirectory}");
        }
    }
}
