using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Tests.Running;

public class RunnerFailureTests
{
    [Fact]
    public void Exception_in_a_cell_exits_non_zero_naming_notebook_cell_and_line()
    {
        var source = TestNotebooks.Write(TestNotebooks.Make(
            TestNotebooks.Parameters(),
            Cell.Code("var items = new List<int>();\nvar first = items[0];")), "throws.ipynb");
        var output = Path.Combine(Path.GetDirectoryName(source)!, "out");

        var result = Cli.Run("run", source, "--profile", "smoke", "--output", output);

        Assert.Equal(1, result.ExitCode);
        Assert.True(result.Stderr.Contains($"error: {source} failed at cell 3, line 2: System.ArgumentOutOfRangeException"), result.Stderr);
        var executed = NotebookJson.Load(Path.Combine(output, "throws.ipynb"));
        Assert.Equal("ArgumentOutOfRangeException", executed.Cells[2].Outputs.Single(o => o.OutputType == "error").Ename);
    }

    [Fact]
    public void Endless_cell_is_killed_at_the_timeout_and_reported()
    {
        var source = TestNotebooks.Write(TestNotebooks.Make(
            TestNotebooks.Parameters(),
            Cell.Code("Console.WriteLine(\"before the loop\");"),
            Cell.Code("while (true) { }"),
            Cell.Code("Console.WriteLine(\"never\");")), "hangs.ipynb");
        var output = Path.Combine(Path.GetDirectoryName(source)!, "out");

        // The timeout under test: long enough that the cells before the loop (the first compiles a cold Roslyn) never
        // reach it on a slow, loaded machine; only the endless cell does.
        var result = Cli.Run("run", source, "--timeout", "30", "--output", output);

        Assert.Equal(1, result.ExitCode);
        Assert.True(result.Stderr.Contains($"error: {source} timed out at cell 4: did not finish within 30 s"), result.Stderr);
        var executed = NotebookJson.Load(Path.Combine(output, "hangs.ipynb"));
        Assert.Equal("before the loop\n", executed.Cells[2].Outputs.Single().Text);
        Assert.Equal("TimeoutError", executed.Cells[3].Outputs.Single().Ename);
        Assert.Empty(executed.Cells[4].Outputs);
    }

    [Fact]
    public void Inplace_run_writes_outputs_into_the_source()
    {
        var source = TestNotebooks.Write(TestNotebooks.Make(TestNotebooks.Parameters(), Cell.Code("Console.WriteLine(profile);")), "inplace.ipynb");

        var result = Cli.Run("run", source, "--inplace", "--profile", "full");

        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal("full\n", NotebookJson.Load(source).Cells[2].Outputs.Single().Text);
    }
}

public class RunnerInputTests
{
    static void AssertBadInput(Cli.Result result, string expected)
    {
        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(expected, line);
    }

    [Fact]
    public void Missing_notebook_is_bad_input()
    {
        var missing = Path.Combine(TestNotebooks.NewFolder(), "missing.ipynb");
        AssertBadInput(Cli.Run("run", missing), $"notebook or folder '{missing}' does not exist");
    }

    [Fact]
    public void File_that_is_not_a_notebook_is_bad_input()
    {
        var path = Path.Combine(TestNotebooks.NewFolder(), "notes.txt");
        File.WriteAllText(path, "hello");
        AssertBadInput(Cli.Run("run", path), $"'{path}' is not a notebook");
    }

    [Fact]
    public void Malformed_json_is_bad_input()
    {
        var path = Path.Combine(TestNotebooks.NewFolder(), "broken.ipynb");
        File.WriteAllText(path, "{ \"cells\": [");
        AssertBadInput(Cli.Run("run", path), $"notebook '{path}' is not valid JSON");
    }

    [Fact]
    public void Unknown_parameter_is_bad_input_and_nothing_runs()
    {
        var source = TestNotebooks.Write(TestNotebooks.Make(TestNotebooks.Parameters(), Cell.Code("1")));
        var output = Path.Combine(Path.GetDirectoryName(source)!, "out");
        AssertBadInput(Cli.Run("run", source, "-p", "nope=1", "--output", output), "unknown parameter 'nope'");
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void Output_folder_equal_to_the_source_folder_is_refused_without_inplace()
    {
        var source = TestNotebooks.Write(TestNotebooks.Make(TestNotebooks.Parameters(), Cell.Code("1")));
        var before = File.ReadAllBytes(source);
        AssertBadInput(Cli.Run("run", source, "--output", Path.GetDirectoryName(source)!), "would overwrite the source notebook");
        Assert.Equal(before, File.ReadAllBytes(source));
    }

    [Fact]
    public void Export_of_a_missing_folder_is_bad_input()
    {
        var missing = Path.Combine(TestNotebooks.NewFolder(), "executed");
        AssertBadInput(Cli.Run("export", missing), $"notebook or folder '{missing}' does not exist");
    }

    [Fact]
    public void Unknown_profile_is_bad_input()
    {
        var source = TestNotebooks.Write(TestNotebooks.Make(TestNotebooks.Parameters()));
        AssertBadInput(Cli.Run("run", source, "--profile", "huge"), "huge");
    }
}
