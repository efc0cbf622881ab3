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

    /// <summary>Result of <see cref="RunUntil"/>: whether the condition killed the process, and its output.</summary>
    public sealed record KillResult(bool Killed, string Stdout, string Stderr);

    /// <summary>
    /// Only turns a hang into a failure; no test waits for it to pass. Generous, so that a slow, loaded machine
    /// never reaches it in a passing run.
    /// </summary>
    public static readonly TimeSpan SafetyLimit = TimeSpan.FromMinutes(10);

    /// <summary>Runs <c>FastNotebooks.Notebooks</c> with <paramref name="args"/>.</summary>
    public static Result Run(params string[] args)
    {
        using var process = Start(args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(SafetyLimit))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"CLI {string.Join(' ', args)} did not exit within {SafetyLimit.TotalMinutes} minutes");
        }
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>
    /// Runs <c>FastNotebooks.Notebooks</c> with <paramref name="args"/> and kills its whole process tree (the runner and
    /// the notebook's child process) as soon as <paramref name="condition"/> holds, tested whenever something changes
    /// under <paramref name="watched"/> (an existing folder). Killed is false when the process exited by itself first.
    /// </summary>
    public static KillResult RunUntil(Func<bool> condition, string watched, params string[] args)
    {
        using var changed = new SemaphoreSlim(0);
        using var watcher = new FileSystemWatcher(watched) { IncludeSubdirectories = true, EnableRaisingEvents = true };
        void Signal(object? _, EventArgs __) => changed.Release();
        watcher.Created += Signal; watcher.Renamed += Signal; watcher.Changed += Signal; watcher.Error += (_, _) => changed.Release();
        using var process = Start(args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var exited = process.WaitForExitAsync();
        bool killed = false;
        var deadline = DateTime.UtcNow + SafetyLimit;
        while (!killed && !exited.IsCompleted)
        {
            if (condition())
            {
                process.Kill(entireProcessTree: true);
                killed = true;
                break;
            }
            // Wakes on a file event or on the process's exit; the safety limit only turns a hang into a failure.
            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"CLI {string.Join(' ', args)}: the awaited condition did not come within {SafetyLimit.TotalMinutes} minutes");
            }
            Task.WaitAny(new[] { changed.WaitAsync(), exited }, remaining);
        }
        process.WaitForExit();
        return new KillResult(killed, stdout.Result, stderr.Result);
    }

    static Process Start(string[] args)
    {
        var (host, prefix) = ChildProcess.SelfCommand();
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in prefix.Concat(args)) start.ArgumentList.Add(a);
        // Spectre sizes tables to the terminal; a fixed width keeps rows on one line in the captured text.
        start.Environment["COLUMNS"] = "200";
        return Process.Start(start)!;
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
