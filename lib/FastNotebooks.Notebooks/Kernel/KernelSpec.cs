using System.Text.Json;
using System.Text.Json.Nodes;
using FastNotebooks.Notebooks.Running;

namespace FastNotebooks.Notebooks.Kernel;

/// <summary>
/// The kernelspec that lets Jupyter front ends (VS Code's Jupyter extension, JupyterLab, nbconvert) start this
/// kernel: a folder <c>kernels/&lt;name&gt;/</c> in the user's Jupyter data directory holding <c>kernel.json</c>,
/// whose argv runs this very build of the engine.
/// </summary>
public static class KernelSpec
{
    /// <summary>The kernel's default name (what <c>--ExecutePreprocessor.kernel_name</c> takes).</summary>
    public const string DefaultName = "fastnotebooks-csharp";

    /// <summary>The name front ends show in their kernel pickers.</summary>
    public const string DisplayName = ".NET C# (FastNotebooks)";

    /// <summary>The user's Jupyter data directory: $JUPYTER_DATA_DIR, else the platform's per-user default (as jupyter_core finds it).</summary>
    public static string UserDataDirectory()
    {
        if (Environment.GetEnvironmentVariable("JUPYTER_DATA_DIR") is { Length: > 0 } configured) return Path.GetFullPath(configured);
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (OperatingSystem.IsWindows()) return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData), "jupyter");
        if (OperatingSystem.IsMacOS()) return Path.Combine(home, "Library", "Jupyter");
        var xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME") is { Length: > 0 } x ? x : Path.Combine(home, ".local", "share");
        return Path.Combine(xdg, "jupyter");
    }

    /// <summary>The folder of kernelspec <paramref name="name"/> under <paramref name="dataDirectory"/>.</summary>
    public static string Folder(string name, string? dataDirectory = null) =>
        Path.Combine(dataDirectory ?? UserDataDirectory(), "kernels", name);

    /// <summary>The kernel.json of this build: argv, display name, language, interrupt by message.</summary>
    public static JsonObject KernelJson()
    {
        var (host, prefix) = ChildProcess.SelfCommand();
        var argv = new JsonArray { host };
        foreach (var a in prefix) argv.Add(a);
        foreach (var a in new[] { "kernel", "--connection-file", "{connection_file}" }) argv.Add(a);
        return new JsonObject
        {
            ["argv"] = argv,
            ["display_name"] = DisplayName,
            ["language"] = "C#",
            // An interrupt_request on the control channel reaches the kernel however it was started (SIGINT works too).
            ["interrupt_mode"] = "message",
            ["metadata"] = new JsonObject { ["debugger"] = false },
        };
    }

    /// <summary>Writes the kernelspec; returns its folder. An existing spec of the same name is replaced.</summary>
    public static string Install(string name = DefaultName, string? dataDirectory = null)
    {
        var folder = Folder(name, dataDirectory);
        Directory.CreateDirectory(folder);
        AtomicFile.WriteAllText(Path.Combine(folder, "kernel.json"), KernelJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return folder;
    }

    /// <summary>Deletes the kernelspec folder; false when there was none.</summary>
    public static bool Remove(string name = DefaultName, string? dataDirectory = null)
    {
        var folder = Folder(name, dataDirectory);
        if (!Directory.Exists(folder)) return false;
        Directory.Delete(folder, recursive: true);
        return true;
    }
}
