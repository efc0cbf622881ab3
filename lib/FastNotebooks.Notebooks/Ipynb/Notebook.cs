using System.Text.Json.Nodes;

namespace FastNotebooks.Notebooks.Ipynb;

/// <summary>
/// An nbformat 4 notebook. Only the fields the engine reads or writes are typed; everything else
/// (notebook, cell and output metadata, unknown keys) is kept as JSON so a load/save round-trip
/// preserves what front ends such as VS Code or Jupyter stored there.
/// </summary>
public sealed class Notebook
{
    /// <summary>The cells in document order.</summary>
    public List<Cell> Cells { get; } = new();

    /// <summary>Notebook metadata (kernelspec, language_info, polyglot_notebook, ...), kept verbatim.</summary>
    public JsonObject Metadata { get; set; } = new();

    /// <summary>Major format version; the engine reads and writes 4.</summary>
    public int NbFormat { get; set; } = 4;

    /// <summary>Minor format version; written as at least 5 because cell ids (4.5) are always written.</summary>
    public int NbFormatMinor { get; set; } = 5;

    /// <summary>Top-level keys this model does not know, written back unchanged.</summary>
    public JsonObject Extra { get; } = new();

    /// <summary>Code cells only, in order.</summary>
    public IEnumerable<Cell> CodeCells => Cells.Where(c => c.IsCode);
}

/// <summary>One cell: code, markdown or raw.</summary>
public sealed class Cell
{
    /// <summary>Cell id (nbformat 4.5): 1-64 characters of [a-zA-Z0-9-_].</summary>
    public string Id { get; set; } = NewId();

    /// <summary>"code", "markdown" or "raw".</summary>
    public string CellType { get; set; } = "code";

    /// <summary>The cell's text, lines joined with "\n".</summary>
    public string Source { get; set; } = "";

    /// <summary>Cell metadata (tags, dotnet_interactive, polyglot_notebook, ...), kept verbatim.</summary>
    public JsonObject Metadata { get; set; } = new();

    /// <summary>Outputs of a code cell; always empty for other cells.</summary>
    public List<Output> Outputs { get; } = new();

    /// <summary>The execution counter of a code cell, null when it has not run.</summary>
    public int? ExecutionCount { get; set; }

    /// <summary>Keys this model does not know (attachments, ...), written back unchanged.</summary>
    public JsonObject Extra { get; } = new();

    /// <summary>True for a code cell.</summary>
    public bool IsCode => CellType == "code";

    /// <summary>The cell's tags (metadata.tags), empty when there are none.</summary>
    public IReadOnlyList<string> Tags =>
        Metadata["tags"] is JsonArray tags ? tags.Select(t => t?.GetValue<string>() ?? "").ToList() : Array.Empty<string>();

    /// <summary>Adds a tag to metadata.tags unless it is already there.</summary>
    public void AddTag(string tag)
    {
        if (Tags.Contains(tag)) return;
        if (Metadata["tags"] is not JsonArray tags) Metadata["tags"] = tags = new JsonArray();
        tags.Add(tag);
    }

    /// <summary>A new C# code cell with the .NET Interactive metadata that front ends use to pick the kernel.</summary>
    public static Cell Code(string source, params string[] tags)
    {
        var cell = new Cell { CellType = "code", Source = source };
        cell.Metadata["dotnet_interactive"] = new JsonObject { ["language"] = "csharp" };
        cell.Metadata["polyglot_notebook"] = new JsonObject { ["kernelName"] = "csharp" };
        foreach (var tag in tags) cell.AddTag(tag);
        return cell;
    }

    /// <summary>A new markdown cell.</summary>
    public static Cell Markdown(string source) => new() { CellType = "markdown", Source = source };

    /// <summary>A fresh random cell id (nbformat 4.5 only asks for uniqueness within the notebook).</summary>
    public static string NewId() => Guid.NewGuid().ToString("N")[..12];
}

/// <summary>One output of a code cell: stream, display_data, execute_result or error.</summary>
public sealed class Output
{
    /// <summary>"stream", "display_data", "execute_result" or "error".</summary>
    public string OutputType { get; set; } = "display_data";

    /// <summary>Stream name ("stdout" or "stderr") for stream outputs.</summary>
    public string? Name { get; set; }

    /// <summary>Stream text for stream outputs.</summary>
    public string? Text { get; set; }

    /// <summary>Mime bundle (mime type → content) for display_data and execute_result; text mimes as strings, JSON mimes as JSON.</summary>
    public JsonObject Data { get; set; } = new();

    /// <summary>Output metadata, kept verbatim.</summary>
    public JsonObject Metadata { get; set; } = new();

    /// <summary>Execution count of an execute_result.</summary>
    public int? ExecutionCount { get; set; }

    /// <summary>Exception or error type name for error outputs.</summary>
    public string? Ename { get; set; }

    /// <summary>Error message for error outputs.</summary>
    public string? Evalue { get; set; }

    /// <summary>Traceback lines for error outputs.</summary>
    public List<string> Traceback { get; set; } = new();

    /// <summary>Keys this model does not know, written back unchanged.</summary>
    public JsonObject Extra { get; } = new();

    /// <summary>The text of one mime type in <see cref="Data"/>, or null when the bundle lacks it.</summary>
    public string? GetData(string mimeType) => Data[mimeType] switch
    {
        null => null,
        JsonArray lines => string.Concat(lines.Select(l => l?.GetValue<string>())),
        JsonValue v when v.TryGetValue(out string? s) => s,
        var other => other.ToJsonString(),
    };

    /// <summary>A stream output.</summary>
    public static Output Stream(string name, string text) => new() { OutputType = "stream", Name = name, Text = text };

    /// <summary>A display_data output (or execute_result when <paramref name="executionCount"/> is given).</summary>
    public static Output Display(IReadOnlyDictionary<string, string> bundle, int? executionCount = null)
    {
        var output = new Output { OutputType = executionCount is null ? "display_data" : "execute_result", ExecutionCount = executionCount };
        foreach (var (mime, content) in bundle) output.Data[mime] = content;
        return output;
    }

    /// <summary>An error output.</summary>
    public static Output Error(string ename, string evalue, IEnumerable<string> traceback) =>
        new() { OutputType = "error", Ename = ename, Evalue = evalue, Traceback = traceback.ToList() };
}
