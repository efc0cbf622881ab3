using System.Text.RegularExpressions;
using System.Text.Json.Nodes;
using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Tests.Running;

[Collection(ExecutedNotebookCollection.Name)]
public class RunnerTests(ExecutedNotebookFixture run)
{
    [Fact]
    public void Run_succeeds_and_prints_a_summary_row_for_the_notebook()
    {
        Assert.True(run.Run.ExitCode == 0, $"exit {run.Run.ExitCode}\n{run.Run.Stdout}\n{run.Run.Stderr}");
        // notebook | cells | seconds | status, whatever border characters the console supports;
        // five code cells: four in the source plus the injected one.
        Assert.Matches(new Regex(@"params\.ipynb\W+5\W+\d+\.\d\W+ok\b"), run.Run.Stdout);
    }

    [Fact]
    public void Command_line_parameters_override_the_defaults()
    {
        var executed = NotebookJson.Load(run.ExecutedPath);
        var printed = executed.Cells.Single(c => c.Source.Contains("Console.WriteLine")).Outputs.Single();
        Assert.Equal("steps=42 label=override profile=smoke\n", printed.Text);
        var injected = executed.Cells[2];
        Assert.Contains("injected-parameters", injected.Tags);
        Assert.Contains("parameters", executed.Cells[1].Tags);
    }

    [Fact]
    public void Display_and_result_outputs_carry_the_expected_mime_types()
    {
        var executed = NotebookJson.Load(run.ExecutedPath);
        var display = executed.Cells.Single(c => c.Source.StartsWith("display(")).Outputs.Single();
        Assert.Equal("display_data", display.OutputType);
        Assert.Contains("override", display.GetData("text/html"));
        var chart = executed.Cells.Single(c => c.Source.StartsWith("Chart.")).Outputs.Single();
        Assert.Equal("execute_result", chart.OutputType);
        Assert.Contains("777002", chart.GetData("text/html"));
    }

    [Fact]
    public void Source_notebook_bytes_are_unchanged_by_a_run()
    {
        Assert.Equal(0, run.Run.ExitCode);
        Assert.Equal(run.SourceBytesBefore, File.ReadAllBytes(run.Source));
    }

    [Fact]
    public async Task Written_notebook_validates_against_the_nbformat_4_5_schema()
    {
        var schema = await NbformatSchema.LoadAsync();
        var errors = schema.Validate(File.ReadAllText(run.ExecutedPath));
        Assert.True(errors.Count == 0, string.Join("\n", errors.Select(e => $"{e.Path}: {e.Kind}")));
    }

    [Fact]
    public async Task Schema_check_rejects_a_broken_notebook()
    {
        // The validation above must be able to fail: a code cell without outputs is invalid nbformat.
        var schema = await NbformatSchema.LoadAsync();
        var json = JsonNode.Parse(File.ReadAllText(run.ExecutedPath))!;
        json["cells"]!.AsArray().OfType<JsonObject>().First(c => c["cell_type"]!.GetValue<string>() == "code").Remove("outputs");
        Assert.NotEmpty(schema.Validate(json.ToJsonString()));
    }
}
