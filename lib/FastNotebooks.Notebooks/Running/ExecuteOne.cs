using FastNotebooks.Notebooks.Engine;
using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Running;

/// <summary>
/// The child-process side of <c>run</c> (the hidden <c>execute-one</c> command): runs one notebook whose
/// parameters the parent already injected, writes it after every cell, and reports progress on stdout as
/// lines starting with <see cref="Marker"/>, so the parent can time each cell and kill a hung one.
/// Cell output never reaches this stdout: the console is routed into the cells.
/// </summary>
public static class ExecuteOne
{
    /// <summary>Prefix of progress lines; anything else on the child's stdout (native libraries) is ignored.</summary>
    public const string Marker = "@@fastnotebooks";

    /// <summary>Runs the notebook at <paramref name="input"/>, writing results to <paramref name="output"/>. Returns 0 when every cell ran, 1 when one failed.</summary>
    public static async Task<int> RunAsync(string input, string output, string workingDirectory)
    {
        var notebook = NotebookJson.Load(input);
        ConsoleRouter.Install();
        var progress = ConsoleRouter.OriginalOut;
        void Report(string line)
        {
            progress.WriteLine($"{Marker} {line}");
            progress.Flush();
        }

        // Before the first cell-start report: the per-cell timeout should not include the compiler's start-up.
        await ScriptSession.WarmUpAsync();

        // Relative paths in a notebook (data files, #r) are relative to its own folder.
        Directory.SetCurrentDirectory(workingDirectory);
        var session = new ScriptSession(workingDirectory, Path.GetFileName(input));
        var error = await NotebookExecutor.RunAsync(notebook, session,
            onCellStarting: cell => Report($"cell-start {cell}"),
            onCellFinished: (cell, result) =>
            {
                NotebookJson.Save(notebook, output);
                Report($"cell-done {cell} {(result.Succeeded ? "ok" : "error")}");
            });
        NotebookJson.Save(notebook, output);
        if (error is null) return 0;
        Report($"error {error.Cell} {error.Line?.ToString() ?? "-"} {error.Kind} {OneLine(error.Message)}");
        return 1;
    }

    static string OneLine(string s) => s.ReplaceLineEndings(" ");
}
