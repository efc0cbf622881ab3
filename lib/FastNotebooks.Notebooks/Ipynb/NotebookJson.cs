using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FastNotebooks.Notebooks.Ipynb;

/// <summary>The input is not a readable nbformat 4 notebook; the message names the file and the problem.</summary>
public sealed class NotebookFormatException(string message) : Exception(message);

/// <summary>Reads and writes .ipynb files (nbformat 4) the way Jupyter does: one-space indent, multi-line text as arrays of lines.</summary>
public static class NotebookJson
{
    static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        IndentSize = 1,
        // Outputs are HTML: keep '<', '>' and '&' readable instead of \u003C escapes (still valid JSON).
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Reads a notebook file. Throws <see cref="NotebookFormatException"/> naming <paramref name="path"/> when it is missing or not a notebook.</summary>
    public static Notebook Load(string path)
    {
        if (!File.Exists(path)) throw new NotebookFormatException($"notebook '{path}' does not exist");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Writes a notebook atomically: a temporary file beside the target, then a rename, so a reader never sees half a notebook.</summary>
    public static void Save(Notebook notebook, string path) => AtomicFile.WriteAllText(path, Serialize(notebook));

    /// <summary>Parses notebook JSON; <paramref name="sourceName"/> names the input in error messages.</summary>
    public static Notebook Parse(string json, string sourceName)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = false }); }
        catch (JsonException e)
        {
            throw new NotebookFormatException($"notebook '{sourceName}' is not valid JSON (line {e.LineNumber + 1}): {FirstSentence(e.Message)}");
        }
        if (root is not JsonObject obj || obj["cells"] is not JsonArray cells || obj["nbformat"] is not JsonValue format)
            throw new NotebookFormatException($"'{sourceName}' is not a Jupyter notebook (expected a JSON object with 'cells' and 'nbformat')");
        var major = format.TryGetValue(out int m) ? m : -1;
        if (major != 4)
            throw new NotebookFormatException($"notebook '{sourceName}' has nbformat {format.ToJsonString()}; only nbformat 4 is supported");

        var notebook = new Notebook
        {
            Metadata = obj["metadata"] as JsonObject is { } md ? (JsonObject)md.DeepClone() : new JsonObject(),
            NbFormat = 4,
            NbFormatMinor = Math.Max(5, obj["nbformat_minor"]?.GetValue<int>() ?? 5),
        };
        foreach (var (key, value) in obj)
            if (key is not ("cells" or "metadata" or "nbformat" or "nbformat_minor")) notebook.Extra[key] = value?.DeepClone();

        var ids = new HashSet<string>();
        for (int i = 0; i < cells.Count; i++)
        {
            if (cells[i] is not JsonObject c || c["cell_type"]?.GetValue<string>() is not { } type)
                throw new NotebookFormatException($"notebook '{sourceName}': cell {i + 1} has no cell_type");
            var cell = new Cell
            {
                CellType = type,
                Source = ReadMultiline(c["source"]),
                Metadata = c["metadata"] is JsonObject cm ? (JsonObject)cm.DeepClone() : new JsonObject(),
                ExecutionCount = c["execution_count"]?.GetValue<int?>(),
            };
            // Notebooks older than 4.5 have no ids; give them one so the written file is valid 4.5.
            var id = c["id"]?.GetValue<string>();
            cell.Id = id is not null && ids.Add(id) ? id : NewUniqueId(ids);
            if (c["outputs"] is JsonArray outputs)
                foreach (var o in outputs.OfType<JsonObject>()) cell.Outputs.Add(ReadOutput(o));
            foreach (var (key, value) in c)
                if (key is not ("id" or "cell_type" or "source" or "metadata" or "outputs" or "execution_count")) cell.Extra[key] = value?.DeepClone();
            notebook.Cells.Add(cell);
        }
        return notebook;
    }

    /// <summary>Serializes to .ipynb JSON (with a trailing newline, as Jupyter writes it).</summary>
    public static string Serialize(Notebook notebook)
    {
        var root = new JsonObject
        {
            ["cells"] = new JsonArray(notebook.Cells.Select(WriteCell).ToArray<JsonNode?>()),
            ["metadata"] = notebook.Metadata.DeepClone(),
            ["nbformat"] = notebook.NbFormat,
            ["nbformat_minor"] = notebook.NbFormatMinor,
        };
        foreach (var (key, value) in notebook.Extra) root[key] = value?.DeepClone();

        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, WriterOptions)) root.WriteTo(writer);
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    static JsonObject WriteCell(Cell cell)
    {
        var c = new JsonObject
        {
            ["cell_type"] = cell.CellType,
            ["id"] = cell.Id,
            ["metadata"] = cell.Metadata.DeepClone(),
            ["source"] = Lines(cell.Source),
        };
        // The schema requires execution_count and outputs on code cells and forbids them elsewhere.
        if (cell.IsCode)
        {
            c["execution_count"] = cell.ExecutionCount;
            c["outputs"] = new JsonArray(cell.Outputs.Select(WriteOutput).ToArray<JsonNode?>());
        }
        foreach (var (key, value) in cell.Extra) c[key] = value?.DeepClone();
        return c;
    }

    static Output ReadOutput(JsonObject o)
    {
        var output = new Output
        {
            OutputType = o["output_type"]?.GetValue<string>() ?? "display_data",
            Name = o["name"]?.GetValue<string>(),
            Text = o["text"] is { } text ? ReadMultiline(text) : null,
            Data = o["data"] is JsonObject data ? (JsonObject)data.DeepClone() : new JsonObject(),
            Metadata = o["metadata"] is JsonObject md ? (JsonObject)md.DeepClone() : new JsonObject(),
            ExecutionCount = o["execution_count"]?.GetValue<int?>(),
            Ename = o["ename"]?.GetValue<string>(),
            Evalue = o["evalue"]?.GetValue<string>(),
            Traceback = o["traceback"] is JsonArray tb ? tb.Select(t => t?.GetValue<string>() ?? "").ToList() : new List<string>(),
        };
        foreach (var (key, value) in o)
            if (key is not ("output_type" or "name" or "text" or "data" or "metadata" or "execution_count" or "ename" or "evalue" or "traceback"))
                output.Extra[key] = value?.DeepClone();
        return output;
    }

    static JsonObject WriteOutput(Output output)
    {
        var o = new JsonObject { ["output_type"] = output.OutputType };
        switch (output.OutputType)
        {
            case "stream":
                o["name"] = output.Name ?? "stdout";
                o["text"] = Lines(output.Text ?? "");
                break;
            case "error":
                o["ename"] = output.Ename ?? "";
                o["evalue"] = output.Evalue ?? "";
                o["traceback"] = new JsonArray(output.Traceback.Select(t => (JsonNode?)t).ToArray());
                break;
            default:
                var data = new JsonObject();
                foreach (var (mime, value) in output.Data)
                    data[mime] = value is JsonValue v && v.TryGetValue(out string? s) ? Lines(s) : value?.DeepClone();
                o["data"] = data;
                o["metadata"] = output.Metadata.DeepClone();
                if (output.OutputType == "execute_result") o["execution_count"] = output.ExecutionCount;
                break;
        }
        foreach (var (key, value) in output.Extra) o[key] = value?.DeepClone();
        return o;
    }

    /// <summary>nbformat's multiline_string: either one string or an array of strings to concatenate.</summary>
    static string ReadMultiline(JsonNode? node) => node switch
    {
        null => "",
        JsonArray parts => string.Concat(parts.Select(p => p?.GetValue<string>())),
        _ => node.GetValue<string>(),
    };

    /// <summary>Splits text into lines that keep their "\n", as Jupyter writes source and text.</summary>
    static JsonArray Lines(string text)
    {
        var lines = new JsonArray();
        int start = 0;
        for (int i = 0; i < text.Length; i++)
            if (text[i] == '\n') { lines.Add(text[start..(i + 1)]); start = i + 1; }
        if (start < text.Length) lines.Add(text[start..]);
        return lines;
    }

    static string NewUniqueId(HashSet<string> taken)
    {
        string id;
        do id = Cell.NewId(); while (!taken.Add(id));
        return id;
    }

    static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }
}
