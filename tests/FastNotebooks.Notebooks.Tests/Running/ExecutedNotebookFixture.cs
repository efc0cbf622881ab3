using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Tests.Running;

/// <summary>
/// One real CLI run (child process and all) of a small notebook with parameters, a display, a chart and
/// math, followed by an export; several test classes check different things about the same run, since
/// each run costs seconds of Roslyn and TorchSharp start-up.
/// </summary>
public sealed class ExecutedNotebookFixture : IDisposable
{
    public string Folder { get; }
    public string Source { get; }
    public byte[] SourceBytesBefore { get; }
    public Cli.Result Run { get; }
    public string ExecutedPath { get; }
    public Cli.Result Export { get; }
    public string HtmlFolder { get; }

    public ExecutedNotebookFixture()
    {
        var notebook = TestNotebooks.Make(
            Cell.Markdown("# Parameters and charts\n\nEuler: $e^{i\\pi} + 1 = 0$, and a sum:\n\n$$\\sum_{i=1}^{n} x_i^2$$"),
            TestNotebooks.Parameters("int steps = 3;\nvar label = \"default\";"),
            Cell.Code("Console.WriteLine($\"steps={steps} label={label} profile={profile}\");"),
            Cell.Code("display(new { steps, label });"),
            Cell.Code("Chart.Line<int, int, string>(x: new[] { 1, 2, 3 }, y: new[] { 777001, 777002, 777003 })"));
        Source = TestNotebooks.Write(notebook, "params.ipynb");
        Folder = Path.GetDirectoryName(Source)!;
        SourceBytesBefore = File.ReadAllBytes(Source);

        var output = Path.Combine(Folder, "out");
        Run = Cli.Run("run", Source, "-p", "steps=42", "-p", "label=override", "--profile", "smoke", "--output", output);
        ExecutedPath = Path.Combine(output, "params.ipynb");
        HtmlFolder = Path.Combine(Folder, "html");
        Export = Cli.Run("export", output, "--output", HtmlFolder);
    }

    /// <summary>The executed notebook and page hold plotly.js and MathJax (megabytes): do not leave them in /tmp.</summary>
    public void Dispose() => Directory.Delete(Folder, recursive: true);
}

[CollectionDefinition(Name)]
public sealed class ExecutedNotebookCollection : ICollectionFixture<ExecutedNotebookFixture>
{
    public const string Name = "executed notebook";
}
