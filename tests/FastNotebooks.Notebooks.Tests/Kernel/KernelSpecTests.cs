using System.Text.Json.Nodes;
using FastNotebooks.Notebooks.Kernel;

namespace FastNotebooks.Notebooks.Tests.Kernel;

public class KernelSpecTests
{
    [Fact]
    public void Install_writes_kernel_json_running_this_build_and_remove_deletes_it()
    {
        var dataDir = TestNotebooks.NewFolder();
        try
        {
            var install = Cli.Run("kernelspec", "install", "--data-dir", dataDir);
            Assert.True(install.ExitCode == 0, install.Stderr);

            var folder = Path.Combine(dataDir, "kernels", KernelSpec.DefaultName);
            var spec = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "kernel.json")))!.AsObject();
            Assert.Equal(".NET C# (FastNotebooks)", spec["display_name"]!.GetValue<string>());
            Assert.Equal("C#", spec["language"]!.GetValue<string>());
            var argv = spec["argv"]!.AsArray().Select(a => a!.GetValue<string>()).ToList();
            Assert.True(File.Exists(argv[0]), argv[0]);
            Assert.Contains(argv, a => a.EndsWith("FastNotebooks.Notebooks.dll", StringComparison.Ordinal) && File.Exists(a));
            Assert.Equal(new[] { "kernel", "--connection-file", "{connection_file}" }, argv[^3..]);

            var remove = Cli.Run("kernelspec", "remove", "--data-dir", dataDir);
            Assert.True(remove.ExitCode == 0, remove.Stderr);
            Assert.False(Directory.Exists(folder));
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public void Data_directory_comes_from_JUPYTER_DATA_DIR_when_set()
    {
        var before = Environment.GetEnvironmentVariable("JUPYTER_DATA_DIR");
        try
        {
            Environment.SetEnvironmentVariable("JUPYTER_DATA_DIR", "/tmp/somewhere/jupyter");
            Assert.Equal("/tmp/somewhere/jupyter/kernels/x", KernelSpec.Folder("x"));
            Environment.SetEnvironmentVariable("JUPYTER_DATA_DIR", null);
            Assert.EndsWith(Path.Combine("jupyter", "kernels", "x"), KernelSpec.Folder("x"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("JUPYTER_DATA_DIR", before);
        }
    }
}
