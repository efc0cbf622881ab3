using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Tests;

/// <summary>Every committed notebook runs clean under the smoke profile, through the real CLI (new notebooks are picked up by the folder).</summary>
public class NotebooksFolderTests
{
    [Fact]
    public void Every_notebook_in_the_notebooks_folder_runs_with_the_smoke_profile()
    {
        var folder = Path.Combine(Repo.Root, "notebooks");
        var notebooks = Directory.GetFiles(folder, "*.ipynb").Select(Path.GetFileName).Order().ToList();
        Assert.Contains("00-hello.ipynb", notebooks);
        var output = TestNotebooks.NewFolder();

        try
        {
            var result = Cli.Run("run", folder, "--profile", "smoke", "--output", output);

            Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}\n{result.Stdout}\n{result.Stderr}");
            foreach (var name in notebooks)
            {
                var executed = NotebookJson.Load(Path.Combine(output, name!));
                Assert.DoesNotContain(executed.CodeCells.SelectMany(c => c.Outputs), o => o.OutputType == "error");
                Assert.All(executed.CodeCells, c => Assert.NotNull(c.ExecutionCount));
            }
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }
}
