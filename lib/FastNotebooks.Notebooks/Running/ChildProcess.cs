using System.Diagnostics;
using FastNotebooks.Notebooks.Engine;

namespace FastNotebooks.Notebooks.Running;

/// <summary>How a child run ended.</summary>
/// <param name="ExitCode">The child's exit code (-1 when it was killed).</param>
/// <param name="Error">The failing cell as the child reported it, or the cell that timed out.</param>
/// <param name="TimedOut">True when the runner killed the child at the per-cell timeout.</param>
/// <param name="Diagnostics">The child's last stderr lines, for crashes that never reached a cell.</param>
public sealed record ChildOutcome(int ExitCode, CellError? Error, bool TimedOut, string Diagnostics);

/// <summary>
/// Runs one notebook in a child process (this program's hidden <c>execute-one</c> command). A cell stuck
/// in a native call cannot be interrupted from inside the process; killing the process can.
/// </summary>
public static class ChildProcess
{
    /// <summary>Time allowed between start and the first cell (runtime start, TorchSharp native load), on top of the cell timeout.</summary>
    static readonly TimeSpan StartupAllowance = TimeSpan.FromSeconds(120);

    /// <summary>Runs <paramref name="input"/> in a child; every cell gets at most <paramref name="cellTimeout"/>.</summary>
    /// <param name="input">The notebook to run (parameters injected).</param>
    /// <param name="output">Where the child writes the executed notebook (after every cell).</param>
    /// <param name="workingDirectory">The notebook's own folder.</param>
    /// <param name="cellTimeout">Longest time one cell may run before the child is killed.</param>
    /// <param name="onCellStarting">Progress callback (1-based cell position).</param>
    public static async Task<ChildOutcome> RunAsync(string input, string output, string workingDirectory, TimeSpan cellTimeout, Action<int>? onCellStarting = null)
    {
        var (host, prefix) = SelfCommand();
        var start = new ProcessStartInfo(host)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        // Timed code in a notebook runs as the bench's does: compiled fully optimized on first use, not first at the quick
        // tier and promoted later (which would charge unoptimized runs to whichever repeat comes first). Precompiled
        // framework and compiler code is used as it is, so start-up barely changes.
        start.Environment["DOTNET_TieredCompilation"] = "0";
        foreach (var a in prefix) start.ArgumentList.Add(a);
        foreach (var a in new[] { "execute-one", input, "--output", output, "--workdir", workingDirectory }) start.ArgumentList.Add(a);

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {host}");
        var gate = new object();
        int currentCell = 0;
        var cellStarted = Stopwatch.StartNew();
        CellError? reported = null;
        var stderrTail = new Queue<string>();

        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not { } line || !line.StartsWith(ExecuteOne.Marker + " ", StringComparison.Ordinal)) return;
            var parts = line[(ExecuteOne.Marker.Length + 1)..].Split(' ', 5);
            lock (gate)
            {
                switch (parts[0])
                {
                    case "cell-start":
                        currentCell = int.Parse(parts[1]);
                        cellStarted.Restart();
                        onCellStarting?.Invoke(currentCell);
                        break;
                    case "cell-done":
                        currentCell = 0;
                        cellStarted.Restart();
                        break;
                    case "error" when parts.Length == 5:
                        reported = new CellError(int.Parse(parts[1]), parts[2] == "-" ? null : int.Parse(parts[2]), parts[3], parts[4]);
                        break;
                }
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (gate)
            {
                stderrTail.Enqueue(e.Data);
                if (stderrTail.Count > 20) stderrTail.Dequeue();
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        // Watchdog: poll rather than one timer per cell, so a cell-start line arriving late cannot race a timer.
        CellError? timedOut = null;
        var exited = process.WaitForExitAsync();
        while (await Task.WhenAny(exited, Task.Delay(200)) != exited)
        {
            lock (gate)
            {
                var limit = currentCell == 0 && reported is null ? cellTimeout + StartupAllowance : cellTimeout;
                if (cellStarted.Elapsed <= limit) continue;
                timedOut = currentCell > 0
                    ? new CellError(currentCell, null, "timeout", $"did not finish within {cellTimeout.TotalSeconds:0.#} s; the runner killed the notebook's process")
                    : new CellError(0, null, "timeout", $"the notebook's process did not start a cell within {limit.TotalSeconds:0.#} s");
            }
            process.Kill(entireProcessTree: true);
            await exited;
            break;
        }
        process.WaitForExit(); // drains the asynchronous readers
        lock (gate)
        {
            return new ChildOutcome(timedOut is null ? process.ExitCode : -1, timedOut ?? reported, timedOut is not null, string.Join("\n", stderrTail));
        }
    }

    /// <summary>
    /// How to start this program again: the dotnet host running this very assembly. Works the same under
    /// <c>dotnet run</c>, the apphost, and a test host that references the project.
    /// </summary>
    public static (string Host, string[] Prefix) SelfCommand()
    {
        var dll = typeof(ChildProcess).Assembly.Location;
        return (DotnetHost(), new[] { "exec", "--runtimeconfig", Path.ChangeExtension(dll, ".runtimeconfig.json"), dll });
    }

    static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { } hostPath && File.Exists(hostPath)) return hostPath;
        if (Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet") return self;
        // The runtime lives in <dotnet root>/shared/Microsoft.NETCore.App/<version>/.
        var root = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(typeof(object).Assembly.Location)!, "..", "..", ".."));
        var candidate = Path.Combine(root, OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet");
        return File.Exists(candidate) ? candidate : "dotnet";
    }
}
