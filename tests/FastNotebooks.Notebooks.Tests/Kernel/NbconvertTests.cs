using System.Text.RegularExpressions;
using FastNotebooks.Notebooks.Ipynb;
using FastNotebooks.Notebooks.Kernel;
using FastNotebooks.Notebooks.Running;
using Xunit.Abstractions;

namespace FastNotebooks.Notebooks.Tests.Kernel;

/// <summary>
/// Every notebook in notebooks/ executed through the kernel by a client this project did not write:
/// Debian's <c>jupyter nbconvert --to notebook --execute</c> (nbclient), under the smoke profile.
/// </summary>
[Collection(JupyterCollection.Name)]
public class NbconvertTests(JupyterFixture jupyter, ITestOutputHelper log)
{
    public static TheoryData<string> Notebooks() =>
        new(Directory.GetFiles(Path.Combine(Repo.Root, "notebooks"), "*.ipynb").Select(p => Path.GetFileName(p)!).Order());

    [SkippableTheory]
    [MemberData(nameof(Notebooks))]
    public async Task Notebook_executes_in_nbconvert_with_the_smoke_profile(string name)
    {
        jupyter.RequireClient();
        var folder = TestNotebooks.NewFolder();
        try
        {
            // A copy with the profile injected as papermill would; the #r paths in it name the engine's build
            // output relative to notebooks/, and the engine maps them to the assemblies it already loaded.
            var notebook = NotebookJson.Load(Path.Combine(Repo.Root, "notebooks", name));
            ParameterInjection.Inject(notebook, new Dictionary<string, string> { [ParameterInjection.ProfileName] = "smoke" }, name);
            NotebookJson.Save(notebook, Path.Combine(folder, name));
            var output = Path.Combine(folder, "executed");

            var environment = jupyter.Environment();
            // Cached data where the runner's own smoke test finds it (it runs in notebooks/, under the repository).
            environment["FASTNOTEBOOKS_DATA"] = Path.Combine(Repo.Root, "data");
            var run = Shell.Run(JupyterFixture.Jupyter,
                new[] { "nbconvert", "--to", "notebook", "--execute", $"--ExecutePreprocessor.kernel_name={KernelSpec.DefaultName}",
                        "--ExecutePreprocessor.timeout=600", "--output-dir", output, name },
                environment, TimeSpan.FromMinutes(10), workingDirectory: folder);
            log.WriteLine($"{name}: nbconvert exit {run.ExitCode} in {run.Elapsed.TotalSeconds:0.0} s\n{run.Output}");
            Assert.True(run.ExitCode == 0, $"nbconvert failed on {name} (exit {run.ExitCode}):\n{run.Output}");

            var executedPath = Path.Combine(output, name);
            var schemaErrors = (await NbformatSchema.LoadAsync()).Validate(File.ReadAllText(executedPath));
            Assert.True(schemaErrors.Count == 0, string.Join("\n", schemaErrors.Select(e => $"{e.Path}: {e.Kind}")));
            var executed = NotebookJson.Load(executedPath);
            var cells = executed.CodeCells.Where(c => !string.IsNullOrWhiteSpace(c.Source)).ToList();
            Assert.NotEmpty(cells);
            Assert.All(cells, c => Assert.NotNull(c.ExecutionCount));
            Assert.Equal(Enumerable.Range(1, cells.Count), cells.Select(c => c.ExecutionCount!.Value));
            Assert.DoesNotContain(cells.SelectMany(c => c.Outputs), o => o.OutputType == "error");
            // A cell that prints or displays shows it.
            Assert.All(cells.Where(c => Prints().IsMatch(c.Source)), c => Assert.NotEmpty(c.Outputs));
            // The .NET Interactive metadata survives, so older front ends still open the executed copy.
            Assert.Equal(".net-csharp", executed.Metadata["kernelspec"]?["name"]?.GetValue<string>());
            Assert.NotNull(executed.Metadata["polyglot_notebook"]);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    static Regex Prints() => new(@"Console\.Write|\bdisplay\(|\.Display\(", RegexOptions.Compiled);
}
