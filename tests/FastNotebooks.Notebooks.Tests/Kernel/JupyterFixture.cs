using System.Diagnostics;
using FastNotebooks.Notebooks.Kernel;

namespace FastNotebooks.Notebooks.Tests.Kernel;

/// <summary>
/// Debian's Jupyter (jupyter-nbconvert, python3-nbclient, python3-jupyter-client) and this build's kernelspec,
/// installed into a temporary Jupyter data directory, shared by the tests that drive the kernel with a real
/// client. Where the packages are missing, they are installed with apt-get when the tests run as root (as on CI).
/// Where they are still missing, <see cref="Missing"/> says why and <see cref="RequireClient"/> fails the test under CI
/// (<c>CI=true</c>) or as root — a CI run cannot pass with these tests left out — and skips it elsewhere.
/// </summary>
public sealed class JupyterFixture : IDisposable
{
    /// <summary>Debian's interpreter; the one on PATH may be another Python without these modules.</summary>
    public const string Python = "/usr/bin/python3";

    /// <summary>Debian's jupyter command.</summary>
    public const string Jupyter = "/usr/bin/jupyter";

    static readonly string[] Packages = { "jupyter-nbconvert", "python3-nbclient", "python3-jupyter-client", "python3-nbformat", "python3-zmq" };

    /// <summary>Null when the client is usable; otherwise why not (the install's error included).</summary>
    public string? Missing { get; }

    /// <summary>True under CI (the CI variable is true or 1) or as root: there the Jupyter tests must run, never skip.</summary>
    public static bool Required =>
        System.Environment.GetEnvironmentVariable("CI") is { } ci && (ci.Equals("true", StringComparison.OrdinalIgnoreCase) || ci == "1") || IsRoot;

    static bool IsRoot => Shell.Run("id", new[] { "-u" }).Output.Trim() == "0";

    /// <summary>
    /// Returns when the client is usable. Otherwise fails the test with <see cref="Missing"/> where the client is
    /// <see cref="Required"/>, and skips it (with the command that installs the packages) elsewhere.
    /// </summary>
    public void RequireClient()
    {
        if (Missing is null) return;
        if (Required) throw new Xunit.Sdk.XunitException($"the Jupyter tests must run here (CI=true or root), but: {Missing}");
        Skip.If(true, Missing);
    }

    /// <summary>The temporary JUPYTER_DATA_DIR holding the kernelspec.</summary>
    public string DataDirectory { get; }

    /// <summary>Installs the packages if needed and possible, then the kernelspec.</summary>
    public JupyterFixture()
    {
        Missing = EnsureClient();
        DataDirectory = TestNotebooks.NewFolder();
        KernelSpec.Install(KernelSpec.DefaultName, DataDirectory);
    }

    /// <summary>Environment for Jupyter processes: our data directory, a private runtime directory (connection files).</summary>
    public Dictionary<string, string> Environment() => new()
    {
        ["JUPYTER_DATA_DIR"] = DataDirectory,
        ["JUPYTER_RUNTIME_DIR"] = Path.Combine(DataDirectory, "runtime"),
        ["JUPYTER_PLATFORM_DIRS"] = "1",
        ["PYTHONDONTWRITEBYTECODE"] = "1",
    };

    /// <summary>Deletes the data directory.</summary>
    public void Dispose() => Directory.Delete(DataDirectory, recursive: true);

    static string? EnsureClient()
    {
        if (ClientWorks()) return null;
        if (!File.Exists("/usr/bin/apt-get"))
            return $"Jupyter's client is not installed and there is no apt-get: install {string.Join(' ', Packages)} (Debian) to run this test.";
        if (!IsRoot)
            return $"Jupyter's client is not installed and the tests do not run as root: sudo apt-get install {string.Join(' ', Packages)} to run this test.";

        // The lock timeout waits for another apt-get (a parallel job) instead of failing at once.
        var install = new[] { "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-q" }.Concat(Packages).ToArray();
        var env = new Dictionary<string, string> { ["DEBIAN_FRONTEND"] = "noninteractive" };
        var result = Shell.Run("/usr/bin/apt-get", install, env, TimeSpan.FromMinutes(10));
        if (result.ExitCode != 0)
        {
            // A fresh machine has no package lists yet.
            Shell.Run("/usr/bin/apt-get", new[] { "-o", "DPkg::Lock::Timeout=300", "update", "-q" }, env, TimeSpan.FromMinutes(10));
            result = Shell.Run("/usr/bin/apt-get", install, env, TimeSpan.FromMinutes(10));
        }
        return ClientWorks() ? null : $"apt-get could not install {string.Join(' ', Packages)} (exit {result.ExitCode}):\n{result.Output}";
    }

    static bool ClientWorks() =>
        File.Exists(Python) && File.Exists(Jupyter)
        && Shell.Run(Python, new[] { "-c", "import nbclient, nbconvert, nbformat, jupyter_client, zmq" }).ExitCode == 0;
}

/// <summary>Kernel tests start kernels and Jupyter processes: one at a time, and not beside the other notebook tests.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class JupyterCollection : ICollectionFixture<JupyterFixture>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "jupyter";
}

/// <summary>Runs a process and collects its output (stdout and stderr interleaved as they arrive).</summary>
public static class Shell
{
    /// <summary>Exit code, output and wall time of one process.</summary>
    public sealed record Result(int ExitCode, string Output, TimeSpan Elapsed);

    /// <summary>Runs <paramref name="file"/>; kills it (and its children, e.g. a kernel) after <paramref name="timeout"/>.</summary>
    public static Result Run(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null,
        TimeSpan? timeout = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        var output = new System.Text.StringBuilder();
        var clock = Stopwatch.StartNew();
        using var process = new Process { StartInfo = start };
        DataReceivedEventHandler append = (_, e) => { if (e.Data is { } line) lock (output) output.AppendLine(line); };
        process.OutputDataReceived += append;
        process.ErrorDataReceived += append;
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var limit = timeout ?? TimeSpan.FromMinutes(1);
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            lock (output) output.AppendLine($"[killed after {limit.TotalSeconds:0} s]");
            return new Result(-1, output.ToString(), clock.Elapsed);
        }
        process.WaitForExit(); // flushes the asynchronous readers
        lock (output) return new Result(process.ExitCode, output.ToString(), clock.Elapsed);
    }
}
