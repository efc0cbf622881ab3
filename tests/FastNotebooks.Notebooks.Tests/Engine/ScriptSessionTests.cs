using FastNotebooks.Notebooks.Engine;
using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Tests.Engine;

public class ScriptSessionTests
{
    static ScriptSession NewSession() => new(TestNotebooks.NewFolder(), "test.ipynb");

    static async Task<CellResult> Ok(ScriptSession session, string code, int cell)
    {
        var result = await session.ExecuteAsync(code, cell);
        Assert.True(result.Succeeded, $"cell {cell} failed: {result.Error}");
        return result;
    }

    [Fact]
    public async Task Variables_and_types_carry_across_cells()
    {
        var session = NewSession();
        await Ok(session, "record Point(int X, int Y);\nvar p = new Point(2, 3);", 1);
        await Ok(session, "int Twice(int v) => 2 * v;", 2);
        var result = await Ok(session, "Twice(p.X + p.Y)", 3);

        var value = Assert.Single(result.Outputs);
        Assert.Equal("execute_result", value.OutputType);
        Assert.Equal(3, value.ExecutionCount);
        Assert.Equal("10", value.GetData("text/plain"));
    }

    [Fact]
    public async Task Compile_error_reports_its_cell_and_line()
    {
        var session = NewSession();
        await Ok(session, "var a = 1;", 1);
        var result = await session.ExecuteAsync("var b = a;\nvar c = undefinedName + 1;", 4);

        Assert.Equal(new CellError(4, 2, "compile", result.Error!.Message), result.Error);
        Assert.Contains("CS0103", result.Error.Message);
        var error = Assert.Single(result.Outputs);
        Assert.Equal("error", error.OutputType);
        Assert.StartsWith("cell 4, line 2, column 9: error CS0103", error.Evalue);
    }

    [Fact]
    public async Task Exception_becomes_an_error_output_with_cell_and_line_and_state_survives()
    {
        var session = NewSession();
        var result = await session.ExecuteAsync("var before = 7;\nConsole.WriteLine(\"started\");\nthrow new InvalidOperationException(\"boom\");", 2);

        Assert.Equal(new CellError(2, 3, "exception", "System.InvalidOperationException: boom"), result.Error);
        Assert.Equal(new[] { "stream", "error" }, result.Outputs.Select(o => o.OutputType));
        Assert.Equal("InvalidOperationException", result.Outputs[1].Ename);
        Assert.Equal("boom", result.Outputs[1].Evalue);
        Assert.StartsWith("cell 2, line 3:", result.Outputs[1].Traceback[0]);
        var after = await Ok(session, "before", 3);
        Assert.Equal("7", after.Outputs[0].GetData("text/plain"));
    }

    [Fact]
    public async Task Exception_inside_a_method_from_an_earlier_cell_points_at_that_cell()
    {
        var session = NewSession();
        await Ok(session, "// helper\nvoid Fail() =>\n    throw new ArgumentException(\"bad\");", 1);
        var result = await session.ExecuteAsync("Fail();", 2);
        Assert.Equal(2, result.Error!.Cell);
        Assert.Contains("raised at cell 1, line 3", result.Error.Message);
    }

    [Fact]
    public async Task Console_output_is_captured_per_cell_in_order_with_displays()
    {
        var session = NewSession();
        var result = await Ok(session, "Console.Write(\"a\"); Console.WriteLine(\"b\"); Console.Error.WriteLine(\"warn\"); display(\"shown\"); Console.WriteLine(\"c\");", 1);

        Assert.Equal(new[] { "stream:stdout:ab\n", "stream:stderr:warn\n", "display_data::", "stream:stdout:c\n" },
            result.Outputs.Select(o => $"{o.OutputType}:{o.Name}:{o.Text}"));
        var next = await Ok(session, "var quiet = 1;", 2);
        Assert.Empty(next.Outputs);
    }

    [Fact]
    public async Task Display_of_an_object_is_html_and_of_a_string_is_plain_text()
    {
        var session = NewSession();
        var result = await Ok(session, "display(new { Name = \"fastmax\", Order = 2 });\ndisplay(\"just text\");", 1);

        var obj = result.Outputs[0];
        Assert.Equal("display_data", obj.OutputType);
        Assert.Contains("fastmax", obj.GetData("text/html"));
        Assert.Contains("<table>", obj.GetData("text/html"));
        var text = result.Outputs[1];
        Assert.Equal(new[] { "text/plain" }, text.Data.Select(kv => kv.Key));
        Assert.Equal("just text", text.GetData("text/plain"));
    }

    [Fact]
    public async Task Markdown_value_is_a_markdown_bundle()
    {
        var session = NewSession();
        var result = await Ok(session, "new FastNotebooks.Reporting.Markdown($\"**measured** {1 + 1}\")", 1);
        var output = Assert.Single(result.Outputs);
        Assert.Equal("**measured** 2", output.GetData("text/markdown"));
        Assert.Equal("**measured** 2", output.GetData("text/plain"));
        Assert.Null(output.GetData("text/html"));
    }

    [Fact]
    public async Task Tensors_use_their_own_formatter()
    {
        var session = NewSession();
        var result = await Ok(session, "tensor(new double[] { 1.5, 2.5 })", 1);
        var html = result.Outputs[0].GetData("text/html")!;
        Assert.Contains("[2], type = Float64, device = cpu", html);
        Assert.Contains("1.5", html);
    }

    [Fact]
    public async Task Plotly_chart_is_html_with_its_data_and_plotly_js_once_per_notebook()
    {
        var session = NewSession();
        var first = await Ok(session, "Chart.Line<int, int, string>(x: new[] { 1, 2, 3 }, y: new[] { 101, 202, 303 })", 1);
        var second = await Ok(session, "display(Chart.Point<int, int, string>(x: new[] { 1 }, y: new[] { 404 }));", 2);

        var html1 = first.Outputs[0].GetData("text/html")!;
        var html2 = second.Outputs[0].GetData("text/html")!;
        Assert.Contains("\"y\":[101,202,303]", html1);
        Assert.Contains("\"y\":[404]", html2);
        Assert.Contains("plotly.js v2.28.0", html1);
        Assert.DoesNotContain("plotly.js v2.28.0", html2);
        Assert.DoesNotContain("<script src", html1);
    }

    [Fact]
    public async Task Reference_to_the_library_maps_to_the_loaded_assembly_without_a_second_copy()
    {
        var session = NewSession();
        // Paths that do not exist: the engine maps by file name to what it already loaded.
        await Ok(session, "#r \"../nowhere/bin/FastNotebooks.dll\"\n#r \"../nowhere/bin/TorchSharp.dll\"", 1);
        var result = await Ok(session, "AppDomain.CurrentDomain.GetAssemblies().Count(a => a.GetName().Name == \"TorchSharp\") + \"|\" + typeof(TorchSharp.torch).Assembly.Location", 2);

        Assert.Equal($"1|{typeof(TorchSharp.torch).Assembly.Location}", result.Outputs[0].GetData("text/plain"));
    }

    [Fact]
    public async Task Kernel_selection_lines_are_ignored_and_keep_line_numbers()
    {
        var session = NewSession();
        var result = await session.ExecuteAsync(NotebookExecutor.WithoutKernelMagics("#!csharp\nvar x = 1;\nx.Nope();"), 1);
        Assert.Equal(3, result.Error!.Line);
    }

    [Fact]
    public async Task Executor_stops_at_the_first_failing_cell()
    {
        var notebook = TestNotebooks.Make(Cell.Markdown("# t"), Cell.Code("var x = 1;"), Cell.Code("throw new Exception(\"stop\");"), Cell.Code("x"));
        var error = await NotebookExecutor.RunAsync(notebook, NewSession());

        Assert.Equal(3, error!.Cell);
        Assert.Equal(new int?[] { 1, 2, null }, notebook.CodeCells.Select(c => c.ExecutionCount));
        Assert.Empty(notebook.Cells[3].Outputs);
    }
}
