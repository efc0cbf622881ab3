using System.Diagnostics;
using FastNotebooks.Notebooks.Engine;
using FastNotebooks.Notebooks.Ipynb;
using Spectre.Console;

namespace FastNotebooks.Notebooks.Running;

/// <summary>Options of the <c>run</c> command.</summary>
/// <param name="Inputs">Notebook files and/or folders (a folder means its *.ipynb, in name order).</param>
/// <param name="Parameters">-p name=value pairs, injected into every notebook.</param>
/// <param name="Profile">smoke | quick | full, injected as the <c>profile</c> parameter.</param>
/// <param name="CellTimeout">Longest time one cell may run.</param>
/// <param name="InPlace">Write the executed notebook over its source instead of into <paramref name="OutputDirectory"/>.</param>
/// <param name="OutputDirectory">Where executed notebooks go (default artifacts/notebooks).</param>
public sealed record RunOptions(IReadOnlyList<string> Inputs, IReadOnlyDictionary<string, string> Parameters, string Profile,
    TimeSpan CellTimeout, bool InPlace, string OutputDirectory);

/// <summary>One row of the summary.</summary>
/// <param name="Notebook">The source notebook path as given.</param>
/// <param name="CodeCells">Number of code cells in the executed notebook (the injected one included).</param>
/// <param name="Elapsed">Wall time of the child process.</param>
/// <param name="Error">Null when every cell ran.</param>
/// <param name="OutputPath">Where the executed notebook was written.</param>
public sealed record NotebookOutcome(string Notebook, int CodeCells, TimeSpan Elapsed, CellError? Error, string OutputPath)
{
    /// <summary>"ok", "failed" or "timed out".</summary>
    public string Status => Error is null ? "ok" : Error.Kind == "timeout" ? "timed out" : "failed";
}

/// <summary>The <c>run</c> command: validates every input first, then executes the notebooks in order, one child process each.</summary>
public static class Runner
{
    /// <summary>Progress value meaning "this notebook is done" (cells count from 1).</summary>
    const int Finished = -1;

    /// <summary>Expands files and folders to notebook paths; throws <see cref="InputException"/> for anything missing or not .ipynb.</summary>
    public static IReadOnlyList<string> ResolveNotebooks(IEnumerable<string> inputs)
    {
        var notebooks = new List<string>();
        foreach (var input in inputs)
        {
            if (Directory.Exists(input))
            {
                var found = Directory.EnumerateFiles(input, "*.ipynb").Order(StringComparer.Ordinal).ToList();
                if (found.Count == 0) throw new InputException($"folder '{input}' contains no .ipynb notebooks");
                notebooks.AddRange(found);
            }
            else if (File.Exists(input))
            {
                if (!input.EndsWith(".ipynb", StringComparison.OrdinalIgnoreCase)) throw new InputException($"'{input}' is not a notebook (expected a .ipynb file)");
                notebooks.Add(input);
            }
            else throw new InputException($"notebook or folder '{input}' does not exist");
        }
        if (notebooks.Count == 0) throw new InputException("no notebooks given");
        var clash = notebooks.GroupBy(Path.GetFileName).FirstOrDefault(g => g.Count() > 1);
        if (clash is not null) throw new InputException($"two notebooks named '{clash.Key}' would write the same output: {string.Join(", ", clash)}");
        return notebooks;
    }

    /// <summary>Runs the notebooks and prints the summary table. Returns 0 when all succeeded, 1 otherwise; bad input throws <see cref="InputException"/> before anything runs.</summary>
    public static async Task<int> RunAsync(RunOptions options, IAnsiConsole console, TextWriter stderr)
    {
        if (!ParameterInjection.Profiles.Contains(options.Profile))
            throw new InputException($"--profile '{options.Profile}': expected one of {string.Join(", ", ParameterInjection.Profiles)}");
        if (options.CellTimeout <= TimeSpan.Zero) throw new InputException($"--timeout {options.CellTimeout.TotalSeconds}: expected a positive number of seconds");

        // Every notebook is read and parameterized before the first one runs: bad input costs no compute.
        var values = new Dictionary<string, string>(options.Parameters) { [ParameterInjection.ProfileName] = options.Profile };
        var prepared = new List<(string Source, Notebook Notebook)>();
        foreach (var path in ResolveNotebooks(options.Inputs))
        {
            Notebook notebook;
            try { notebook = NotebookJson.Load(path); }
            catch (NotebookFormatException e) { throw new InputException(e.Message); }
            ParameterInjection.Inject(notebook, values, path);
            prepared.Add((path, notebook));
        }

        foreach (var (source, _) in prepared)
        {
            if (!options.InPlace && Path.GetFullPath(Path.Combine(options.OutputDirectory, Path.GetFileName(source))) == Path.GetFullPath(source))
                throw new InputException($"--output '{options.OutputDirectory}' would overwrite the source notebook '{source}'; pass --inplace to do that on purpose");
        }

        var scratch = Directory.CreateTempSubdirectory("fastnotebooks-run-");
        var outcomes = new List<NotebookOutcome>();
        try
        {
            async Task RunAll(Func<string, Notebook, Action<int>> progressFor)
            {
                foreach (var (source, notebook) in prepared)
                {
                    var destination = options.InPlace ? source : Path.Combine(options.OutputDirectory, Path.GetFileName(source));
                    var progress = progressFor(source, notebook);
                    outcomes.Add(await RunOneAsync(source, notebook, destination, options.CellTimeout, scratch.FullName, progress));
                    progress(Finished);
                }
            }

            if (console.Profile.Capabilities.Interactive)
            {
                // A terminal: one progress bar per notebook, advancing cell by cell.
                await console.Progress().AutoClear(false).StartAsync(ctx => RunAll((source, notebook) =>
                {
                    var cells = notebook.Cells.Select((c, i) => (c, i)).Where(x => x.c.IsCode).Select(x => x.i + 1).ToList();
                    var task = ctx.AddTask(Markup.Escape(source), maxValue: cells.Count);
                    return cell =>
                    {
                        task.Value = cell == Finished ? cells.Count : cells.IndexOf(cell);
                        task.Description = Markup.Escape(cell == Finished ? $"{source} ({outcomes[^1].Status})" : $"{source} (cell {cell})");
                    };
                }));
            }
            else
            {
                // A log (CI, redirected output): one line per notebook and per cell.
                await RunAll((source, _) =>
                {
                    console.MarkupLineInterpolated($"[grey]running[/] {source}");
                    return cell =>
                    {
                        if (cell != Finished) console.MarkupLineInterpolated($"[grey]  cell {cell}[/]");
                    };
                });
            }
        }
        finally
        {
            scratch.Delete(recursive: true);
        }

        PrintSummary(outcomes, console);
        var failure = outcomes.FirstOrDefault(o => o.Error is not null);
        if (failure is null) return 0;
        stderr.WriteLine($"error: {failure.Notebook} {failure.Status} at {failure.Error}");
        return 1;
    }

    static async Task<NotebookOutcome> RunOneAsync(string source, Notebook notebook, string destination, TimeSpan timeout, string scratch, Action<int> onCellStarting)
    {
        var name = Path.GetFileName(source);
        var input = Path.Combine(scratch, name);
        var output = Path.Combine(scratch, Path.GetFileNameWithoutExtension(name) + ".executed.ipynb");
        NotebookJson.Save(notebook, input);
        var folder = Path.GetDirectoryName(Path.GetFullPath(source))!;

        var clock = Stopwatch.StartNew();
        var child = await ChildProcess.RunAsync(input, output, folder, timeout, onCellStarting);
        clock.Stop();

        // The child writes after each cell; after a kill, its last write holds everything up to the hung cell.
        var executed = File.Exists(output) ? NotebookJson.Load(output) : notebook;
        var error = child.Error;
        if (child.TimedOut && error is { Cell: > 0 } t)
        {
            executed.Cells[t.Cell - 1].Outputs.Add(Output.Error("TimeoutError", t.Message, new[] { t.ToString() }));
        }
        else if (error is null && child.ExitCode != 0)
        {
            // The child died before reporting a cell (crash, bad runtime): say so with what it printed.
            error = new CellError(0, null, "crash", $"the notebook's process exited with code {child.ExitCode}: {child.Diagnostics.Split('\n').LastOrDefault(l => l.Trim().Length > 0) ?? "no output"}");
        }
        NotebookJson.Save(executed, destination);
        return new NotebookOutcome(source, executed.CodeCells.Count(), clock.Elapsed, error, destination);
    }

    static void PrintSummary(IReadOnlyList<NotebookOutcome> outcomes, IAnsiConsole console)
    {
        var table = new Table().AddColumns("notebook", "cells", "seconds", "status");
        foreach (var o in outcomes)
        {
            var status = o.Error is null ? "[green]ok[/]" : $"[red]{Markup.Escape(o.Status)}[/] {Markup.Escape(o.Error.ToString())}";
            table.AddRow(Markup.Escape(o.Notebook), o.CodeCells.ToString(), o.Elapsed.TotalSeconds.ToString("0.0"), status);
        }
        console.Write(table);
    }
}
