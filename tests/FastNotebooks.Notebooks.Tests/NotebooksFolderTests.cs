using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Tests;

/// <summary>
/// Every committed notebook runs clean under the smoke profile, through the real CLI, one test per notebook (new
/// notebooks are picked up from the folder).
/// </summary>
public class NotebooksFolderTests
{
    static IEnumerable<string> Names() =>
        Directory.GetFiles(Path.Combine(Repo.Root, "notebooks"), "*.ipynb").Select(p => Path.GetFileName(p)!).Order();

    public static TheoryData<string> Notebooks() => new(Names());

    [Fact]
    public void The_folder_holds_the_numbered_notebooks() => Assert.Contains("00-hello.ipynb", Names());

    [Theory]
    [MemberData(nameof(Notebooks))]
    public void Notebook_runs_with_the_smoke_profile(string name)
    {
        var output = TestNotebooks.NewFolder();
        try
        {
            var result = Cli.Run("run", Path.Combine(Repo.Root, "notebooks", name), "--profile", "smoke", "--output", output);

            Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}\n{result.Stdout}\n{result.Stderr}");
            var executed = NotebookJson.Load(Path.Combine(output, name));
            Assert.DoesNotContain(executed.CodeCells.SelectMany(c => c.Outputs), o => o.OutputType == "error");
            Assert.All(executed.CodeCells, c => Assert.NotNull(c.ExecutionCount));
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }
}
