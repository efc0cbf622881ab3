using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Engine;

/// <summary>Why a cell failed, located in the notebook: 1-based cell position and 1-based line within the cell.</summary>
/// <param name="Cell">Position of the cell in the notebook, counting every cell from 1 (markdown and injected cells included); 0 when no cell was running.</param>
/// <param name="Line">Line within the cell, from 1; null when unknown (an exception raised outside notebook code).</param>
/// <param name="Kind">"compile", "exception", "timeout" or "crash".</param>
/// <param name="Message">One line: the diagnostic or the exception type and message.</param>
public sealed record CellError(int Cell, int? Line, string Kind, string Message)
{
    /// <summary>"cell 3, line 2: error CS0103: ..." — the form the runner prints.</summary>
    public override string ToString() => (Cell, Line) switch
    {
        (0, _) => Message, // the process failed before or between cells
        (_, { } line) => $"cell {Cell}, line {line}: {Message}",
        _ => $"cell {Cell}: {Message}",
    };
}

/// <summary>What running one cell produced.</summary>
/// <param name="Outputs">Outputs in order (streams, displays, result, error).</param>
/// <param name="ExecutionCount">The execution counter given to the cell.</param>
/// <param name="Error">Null when the cell ran to the end.</param>
public sealed record CellResult(IReadOnlyList<Output> Outputs, int ExecutionCount, CellError? Error)
{
    /// <summary>True when the cell compiled and ran without an exception.</summary>
    public bool Succeeded => Error is null;
}
