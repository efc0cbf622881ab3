using System.Text.Json.Nodes;
using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Tests.Ipynb;

public class NotebookJsonTests
{
    const string WithUnknownMetadata = """
        {
         "cells": [
          {"cell_type": "markdown", "id": "m1", "metadata": {"custom": {"keep": [1, 2]}}, "source": ["# Title\n", "text"], "attachments": {}},
          {"cell_type": "code", "id": "c1", "metadata": {"dotnet_interactive": {"language": "csharp"}, "tags": ["parameters"]},
           "execution_count": 3, "source": "var x = 1;",
           "outputs": [{"output_type": "display_data", "data": {"text/html": ["<b>", "x</b>"], "application/json": {"a": 1}}, "metadata": {"isolated": true}}]}
         ],
         "metadata": {"kernelspec": {"name": ".net-csharp"}, "polyglot_notebook": {"kernelInfo": {"defaultKernelName": "csharp"}}, "vendor": {"x": true}},
         "nbformat": 4, "nbformat_minor": 5
        }
        """;

    [Fact]
    public void Unknown_metadata_and_keys_survive_a_round_trip()
    {
        var once = NotebookJson.Parse(WithUnknownMetadata, "t.ipynb");
        var twice = NotebookJson.Parse(NotebookJson.Serialize(once), "t2.ipynb");

        Assert.Equal("""{"x":true}""", twice.Metadata["vendor"]!.ToJsonString());
        Assert.Equal("csharp", twice.Metadata["polyglot_notebook"]!["kernelInfo"]!["defaultKernelName"]!.GetValue<string>());
        Assert.Equal("""{"keep":[1,2]}""", twice.Cells[0].Metadata["custom"]!.ToJsonString());
        Assert.True(twice.Cells[0].Extra.ContainsKey("attachments"));
        Assert.Equal("# Title\ntext", twice.Cells[0].Source);
        Assert.Equal(new[] { "parameters" }, twice.Cells[1].Tags);
        Assert.Equal(3, twice.Cells[1].ExecutionCount);
        var output = Assert.Single(twice.Cells[1].Outputs);
        Assert.Equal("<b>x</b>", output.GetData("text/html"));
        Assert.Equal("""{"a":1}""", output.Data["application/json"]!.ToJsonString());
        Assert.Equal("true", output.Metadata["isolated"]!.ToJsonString());
    }

    [Fact]
    public void Source_is_written_as_lines_that_keep_their_newlines()
    {
        var notebook = new Notebook();
        notebook.Cells.Add(Cell.Code("a\nb\n\nc"));
        var json = JsonNode.Parse(NotebookJson.Serialize(notebook))!;
        var lines = json["cells"]![0]!["source"]!.AsArray().Select(l => l!.GetValue<string>());
        Assert.Equal(new[] { "a\n", "b\n", "\n", "c" }, lines);
    }

    [Fact]
    public void Cells_without_ids_get_unique_ids()
    {
        var notebook = NotebookJson.Parse("""{"cells":[{"cell_type":"code","source":"","metadata":{},"outputs":[],"execution_count":null},{"cell_type":"code","source":"","metadata":{},"outputs":[],"execution_count":null}],"metadata":{},"nbformat":4,"nbformat_minor":4}""", "old.ipynb");
        Assert.Equal(5, notebook.NbFormatMinor);
        Assert.NotEqual(notebook.Cells[0].Id, notebook.Cells[1].Id);
    }

    [Fact]
    public void Malformed_json_names_the_file_and_line()
    {
        var e = Assert.Throws<NotebookFormatException>(() => NotebookJson.Parse("{\n \"cells\": [\n  oops\n]}", "broken.ipynb"));
        Assert.Contains("broken.ipynb", e.Message);
        Assert.Contains("not valid JSON (line 3)", e.Message);
    }

    [Theory]
    [InlineData("[1, 2]")]
    [InlineData("""{"cells": []}""")]
    [InlineData("""{"cells": [], "nbformat": 3}""")]
    public void Json_that_is_not_an_nbformat_4_notebook_is_rejected(string json)
    {
        var e = Assert.Throws<NotebookFormatException>(() => NotebookJson.Parse(json, "other.json"));
        Assert.Contains("other.json", e.Message);
    }

    [Fact]
    public void Save_replaces_the_file_whole_and_leaves_no_temporary_files()
    {
        var folder = TestNotebooks.NewFolder();
        var path = Path.Combine(folder, "n.ipynb");
        File.WriteAllText(path, "old content that is longer than the new notebook will be, to catch a partial overwrite" + new string('x', 10000));
        NotebookJson.Save(TestNotebooks.Make(Cell.Markdown("hi")), path);
        Assert.Equal("hi", NotebookJson.Load(path).Cells[0].Source);
        Assert.Equal(new[] { "n.ipynb" }, Directory.GetFiles(folder).Select(Path.GetFileName));
    }
}
