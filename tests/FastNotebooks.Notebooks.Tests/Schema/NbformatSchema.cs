using System.Text.Json.Nodes;
using NJsonSchema;

namespace FastNotebooks.Notebooks.Tests;

/// <summary>The bundled nbformat 4.5 schema (see Schema/README.md), loaded for NJsonSchema.</summary>
public static class NbformatSchema
{
    /// <summary>
    /// Loads the schema. nbformat nests some definitions one level down (#/definitions/misc/multiline_string),
    /// which NJsonSchema does not resolve; they are lifted to #/definitions/misc_* in memory, which changes
    /// no constraint. The file on disk stays as Debian ships it.
    /// </summary>
    public static async Task<JsonSchema> LoadAsync()
    {
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Schema", "nbformat.v4.5.schema.json")))!.AsObject();
        var definitions = root["definitions"]!.AsObject();
        var misc = definitions["misc"]!.AsObject();
        definitions.Remove("misc");
        foreach (var (name, definition) in misc.ToList())
        {
            misc.Remove(name);
            definitions["misc_" + name] = definition;
        }
        var json = root.ToJsonString().Replace("#/definitions/misc/", "#/definitions/misc_", StringComparison.Ordinal);
        return await JsonSchema.FromJsonAsync(json);
    }
}
