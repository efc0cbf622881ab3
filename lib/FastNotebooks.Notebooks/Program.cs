using System.CommandLine;
using FastNotebooks.Notebooks.Export;
using FastNotebooks.Notebooks.Ipynb;
using FastNotebooks.Notebooks.Running;
using Spectre.Console;

namespace FastNotebooks.Notebooks;

/// <summary>
/// The <c>FastNotebooks.Notebooks</c> command line: <c>run</c> executes notebooks (each in a child
/// process), <c>export</c> turns executed notebooks into offline HTML, <c>kernel</c> serves Jupyter front ends
/// and <c>kernelspec install|remove</c> registers that kernel with them. Exit codes: 0 success, 1 a notebook
/// failed, 2 bad input.
/// </summary>
public static class Program
{
    /// <summary>Exit code when every notebook ran.</summary>
    public const int Success = 0;

    /// <summary>Exit code when a cell failed or timed out.</summary>
    public const int NotebookFailed = 1;

    /// <summary>Exit code for bad input: missing file, not a notebook, malformed JSON, unknown parameter, bad option.</summary>
    public const int BadInput = 2;

    /// <summary>Entry point.</summary>
    public static async Task<int> Main(string[] args)
    {
        FastNotebooks.OpenMpSpin.Apply();   // before libtorch loads here or in a child process (libgomp reads it then)
        var root = new RootCommand("FastNotebooks notebook runner: execute .NET C# notebooks, export them to offline HTML, and serve them as a Jupyter kernel.");
        root.Add(RunCommand());
        root.Add(ExportCommand());
        root.Add(ResultsCommand());
        root.Add(ExecuteOneCommand());
        root.Add(Kernel.KernelCommands.Kernel());
        root.Add(Kernel.KernelCommands.KernelSpecCommand());

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0 && parsed.Action is null or System.CommandLine.Invocation.ParseErrorAction)
        {
            // One line, as for every other kind of bad input.
            Console.Error.WriteLine($"error: {parsed.Errors[0].Message.Split('\n')[0].Trim()}");
            return BadInput;
        }
        try
        {
            // Our own handler: bad input must exit 2 with one line, not a stack trace and 1.
            return await parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (InputException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return BadInput;
        }
    }

    static Command RunCommand()
    {
        var inputs = new Argument<string[]>("notebooks") { Description = "Notebooks (.ipynb) or folders of them, run in the order given (a folder's notebooks in name order).", Arity = ArgumentArity.OneOrMore };
        var parameters = new Option<string[]>("--parameter", "-p") { Description = "Set a parameter declared in the notebook's parameters cell: -p name=value (repeatable).", AllowMultipleArgumentsPerToken = false };
        var profile = new Option<string>("--profile") { Description = "smoke (seconds), quick (minutes) or full (the paper's configurations).", DefaultValueFactory = _ => "quick" };
        var timeout = new Option<double>("--timeout") { Description = "Seconds one cell may run before its notebook's process is killed.", DefaultValueFactory = _ => 900 };
        var inPlace = new Option<bool>("--inplace") { Description = "Write executed notebooks over their sources (default: leave sources untouched)." };
        var output = new Option<string>("--output", "-o") { Description = "Folder for executed notebooks.", DefaultValueFactory = _ => Path.Combine("artifacts", "notebooks") };

        var command = new Command("run", "Execute notebooks, each in its own process, and write the executed copies.") { inputs, parameters, profile, timeout, inPlace, output };
        command.SetAction(async (result, _) =>
        {
            var options = new RunOptions(
                result.GetValue(inputs) ?? Array.Empty<string>(),
                ParameterInjection.ParseAssignments(result.GetValue(parameters) ?? Array.Empty<string>()),
                result.GetValue(profile) ?? "quick",
                TimeSpan.FromSeconds(result.GetValue(timeout)),
                result.GetValue(inPlace),
                result.GetValue(output) ?? Path.Combine("artifacts", "notebooks"));
            return await Runner.RunAsync(options, AnsiConsole.Console, Console.Error);
        });
        return command;
    }

    static Command ExportCommand()
    {
        var inputs = new Argument<string[]>("notebooks") { Description = "Executed notebooks or folders of them.", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--output", "-o") { Description = "Folder for the HTML pages and index.html.", DefaultValueFactory = _ => Path.Combine("artifacts", "html") };
        var command = new Command("export", "Export executed notebooks to self-contained HTML pages (math and charts work offline).") { inputs, output };
        command.SetAction(result =>
        {
            IReadOnlyList<string> pages;
            try
            {
                pages = HtmlExport.Export(result.GetValue(inputs) ?? Array.Empty<string>(), result.GetValue(output)!);
            }
            catch (FileNotFoundException e) when (e.Message.StartsWith("MathJax", StringComparison.Ordinal))
            {
                // Not the user's input: the build could not fetch the math renderer.
                Console.Error.WriteLine($"error: {e.Message}");
                return NotebookFailed;
            }
            foreach (var page in pages) Console.WriteLine($"wrote {page} ({new FileInfo(page).Length / 1024.0 / 1024.0:0.00} MB)");
            return Success;
        });
        return command;
    }

    static Command ResultsCommand()
    {
        var command = new Command("results", "Print the recorded results (results/<notebook>/<profile>.json): each claim of the paper with its recorded quick and full values and verdict.");
        command.SetAction(_ =>
        {
            var rows = Reporting.RecordedRuns.Overview();
            if (rows.Count == 0) { Console.WriteLine("No recorded results in results/."); return Success; }
            var table = new Table().AddColumns("notebook", "claim", "required", "paper", "quick", "full", "verdict");
            foreach (var r in rows)
                table.AddRow(Markup.Escape(r.Notebook), Markup.Escape(r.Claim), Markup.Escape(r.Required), Markup.Escape(r.Paper),
                    Markup.Escape(r.Quick), Markup.Escape(r.Full), r.Holds ? $"[green]{Markup.Escape(r.Verdict)}[/]" : $"[red]{Markup.Escape(r.Verdict)}[/]");
            // Piped output has no terminal width; give the claims room instead of Spectre's 80 columns.
            if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
            AnsiConsole.Write(table);
            foreach (var run in Reporting.RecordedRuns.All()) Console.WriteLine($"{run.Notebook}: {run.ProvenanceLine.Replace("`", "")}");
            return Success;
        });
        return command;
    }

    static Command ExecuteOneCommand()
    {
        var input = new Argument<string>("notebook");
        var output = new Option<string>("--output") { Required = true };
        var workdir = new Option<string>("--workdir") { Required = true };
        // Hidden: the runner starts it in a child process, one per notebook, so a hung cell can be killed.
        var command = new Command("execute-one", "Run one parameterized notebook (used by run).") { input, output, workdir };
        command.Hidden = true;
        command.SetAction(async (result, _) =>
        {
            try
            {
                return await ExecuteOne.RunAsync(result.GetValue(input)!, result.GetValue(output)!, result.GetValue(workdir)!);
            }
            catch (NotebookFormatException e)
            {
                throw new InputException(e.Message);
            }
        });
        return command;
    }
}
