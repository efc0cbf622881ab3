using System.Text.Json.Nodes;
using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Kernel;

/// <summary>
/// The content of the iopub message for a notebook output: the message type is the output type (stream,
/// display_data, execute_result, error) and the fields are those nbformat stores, so a front end saves
/// what the runner would have written.
/// </summary>
public static class OutputMessages
{
    /// <summary>The iopub content of <paramref name="output"/>.</summary>
    public static JsonObject Content(Output output) => output.OutputType switch
    {
        "stream" => new JsonObject { ["name"] = output.Name, ["text"] = output.Text },
        "error" => new JsonObject
        {
            ["ename"] = output.Ename,
            ["evalue"] = output.Evalue,
            ["traceback"] = new JsonArray(output.Traceback.Select(l => (JsonNode)l).ToArray()),
        },
        "execute_result" => new JsonObject
        {
            ["execution_count"] = output.ExecutionCount,
            ["data"] = output.Data.DeepClone(),
            ["metadata"] = output.Metadata.DeepClone(),
        },
        _ => new JsonObject
        {
            ["data"] = output.Data.DeepClone(),
            ["metadata"] = output.Metadata.DeepClone(),
            ["transient"] = new JsonObject(),
        },
    };
}
