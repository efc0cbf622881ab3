using FastNotebooks.Notebooks.Kernel;
using Xunit.Abstractions;

namespace FastNotebooks.Notebooks.Tests.Kernel;

/// <summary>
/// The kernel under jupyter_client (protocol_check.py): execute, errors, displays and charts, output streamed
/// while a cell runs, completion, a message with a bad
/// signature (dropped, the kernel still answers), interrupting <c>while (true) { }</c> by message and
/// <c>Thread.Sleep(600000)</c> by SIGINT, and a restart that forgets variables.
/// </summary>
[Collection(JupyterCollection.Name)]
public class ProtocolTests(JupyterFixture jupyter, ITestOutputHelper log)
{
    [SkippableFact]
    public void Kernel_passes_the_protocol_checks_of_jupyter_client()
    {
        var script = Path.Combine(AppContext.BaseDirectory, "Kernel", "protocol_check.py");

        var folder = TestNotebooks.NewFolder();
        jupyter.RequireClient();
        // A safety limit only: each check in the script waits for events, with its own limits for a hang.
        var run = Shell.Run(JupyterFixture.Python, new[] { script, KernelSpec.DefaultName }, jupyter.Environment(), TimeSpan.FromMinutes(20),
            workingDirectory: folder);
        Directory.Delete(folder, recursive: true);
        log.WriteLine($"protocol_check.py exit {run.ExitCode} in {run.Elapsed.TotalSeconds:0.0} s\n{run.Output}");

        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Contains("ok stream: output of a running cell arrives while it runs", run.Output);
        Assert.Contains("ok bad signature: message dropped, kernel still answers", run.Output);
        Assert.Contains("ok interrupt (interrupt_request): while (true) { } stops", run.Output);
        Assert.Contains("ok interrupt (SIGINT): Thread.Sleep(600000) stops", run.Output);
        Assert.Contains("ok restart: variables are gone", run.Output);
        Assert.Contains("kernel: dropped a message on shell: bad signature", run.Output);
    }
}
