using System.Text.RegularExpressions;
using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Engine;

/// <summary>Runs a notebook's code cells in order in one <see cref="ScriptSession"/>, filling in outputs; stops at the first failing cell, like papermill.</summary>
public static partial class NotebookExecutor
{
    /// <summary>Runs every code cell of <paramref name="notebook"/> (in place: outputs and execution counts are replaced).</summary>
    /// <param name="notebook">The notebook, parameters already injected.</param>
    /// <param name="session">The session to run in; its base directory should be the notebook's folder.</param>
    /// <param name="onCellStarting">Called with the 1-based cell position before a cell runs (the runner's timeout clock starts here).</param>
    /// <param name="onCellFinished">Called after each cell, with the notebook as it stands (for writing partial results).</param>
    /// <param name="cancellationToken">Stops between cells.</param>
    /// <returns>The first error, or null when every cell ran.</returns>
    public static async Task<CellError?> RunAsync(Notebook notebook, ScriptSession session, Action<int>? onCellStarting = null,
        Action<int, CellResult>? onCellFinished = null, CancellationToken cancellationToken = default)
    {
        // Outputs of an earlier run (a notebook run --inplace, or edited in a front end) are replaced, not appended to.
        foreach (var cell in notebook.CodeCells)
        {
            cell.Outputs.Clear();
            cell.ExecutionCount = null;
        }
        for (int i = 0; i < notebook.Cells.Count; i++)
        {
            var cell = notebook.Cells[i];
            if (!cell.IsCode || string.IsNullOrWhiteSpace(cell.Source)) continue;
            cancellationToken.ThrowIfCancellationRequested();
            onCellStarting?.Invoke(i + 1);
            var result = await session.ExecuteAsync(WithoutKernelMagics(cell.Source), i + 1, cancellationToken);
            cell.ExecutionCount = result.ExecutionCount;
            cell.Outputs.AddRange(result.Outputs);
            onCellFinished?.Invoke(i + 1, result);
            if (result.Error is not null) return result.Error;
        }
        return null;
    }

    /// <summary>
    /// Comments out .NET Interactive kernel-selection lines (<c>#!csharp</c>, <c>#!c#</c>, <c>#!cs</c>): they
    /// are not C#, and turning them into comments keeps every other line's number.
    /// </summary>
    public static string WithoutKernelMagics(string source) => KernelMagic().Replace(source, "//$1");

    [GeneratedRegex(@"^(#!(?:csharp|c#|cs)\b.*)$", RegexOptions.Multiline)]
    private static partial Regex KernelMagic();
}
