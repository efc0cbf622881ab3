using System.CommandLine;

namespace FastNotebooks.Notebooks.Kernel;

/// <summary>
/// The command-line side of the kernel: <c>kernel --connection-file f</c> (what kernel.json runs) and
/// <c>kernelspec install|remove [--name n] [--data-dir d]</c>.
/// </summary>
public static class KernelCommands
{
    /// <summary><c>kernel --connection-file path</c>: serve one front end until it shuts the kernel down.</summary>
    public static Command Kernel()
    {
        var connectionFile = new Option<string>("--connection-file", "-f") { Description = "The connection file the front end wrote (ports and signing key).", Required = true };
        var command = new Command("kernel", "Run as a Jupyter kernel (started by a front end through the installed kernelspec).") { connectionFile };
        command.SetAction(result =>
        {
            // Captured before the engine routes the console into cells: the kernel's log is its real stderr.
            var log = Console.Error;
            var connection = ConnectionFile.Load(result.GetValue(connectionFile)!);
            // jupyter_server names the notebook's path in JPY_SESSION_NAME; nbconvert and older front ends do not.
            var notebook = Environment.GetEnvironmentVariable("JPY_SESSION_NAME") is { Length: > 0 } session ? Path.GetFileName(session) : "notebook";
            using var server = new KernelServer(connection, Environment.CurrentDirectory, notebook, log);
            return server.Run();
        });
        return command;
    }

    /// <summary><c>kernelspec install</c> and <c>kernelspec remove</c>.</summary>
    public static Command KernelSpecCommand()
    {
        var command = new Command("kernelspec", $"Install or remove the Jupyter kernelspec \"{KernelSpec.DisplayName}\" for VS Code, JupyterLab and nbconvert.");
        command.Add(Install());
        command.Add(Remove());
        return command;
    }

    static Option<string> NameOption() => new("--name") { Description = "Kernel name.", DefaultValueFactory = _ => KernelSpec.DefaultName };

    static Option<string?> DataDirOption() => new("--data-dir")
    {
        Description = "Jupyter data directory (default: $JUPYTER_DATA_DIR, else the user's, e.g. ~/.local/share/jupyter).",
    };

    static Command Install()
    {
        var name = NameOption();
        var dataDir = DataDirOption();
        var command = new Command("install", "Install the kernelspec for the current user, pointing at this build.") { name, dataDir };
        command.SetAction(result =>
        {
            var folder = KernelSpec.Install(result.GetValue(name)!, result.GetValue(dataDir));
            Console.WriteLine($"installed kernelspec '{result.GetValue(name)}' ({KernelSpec.DisplayName}) in {folder}");
            return Program.Success;
        });
        return command;
    }

    static Command Remove()
    {
        var name = NameOption();
        var dataDir = DataDirOption();
        var command = new Command("remove", "Remove the kernelspec.") { name, dataDir };
        command.SetAction(result =>
        {
            var kernel = result.GetValue(name)!;
            var removed = KernelSpec.Remove(kernel, result.GetValue(dataDir));
            Console.WriteLine(removed ? $"removed kernelspec '{kernel}' from {KernelSpec.Folder(kernel, result.GetValue(dataDir))}"
                                      : $"no kernelspec '{kernel}' in {KernelSpec.Folder(kernel, result.GetValue(dataDir))}");
            return Program.Success;
        });
        return command;
    }
}
