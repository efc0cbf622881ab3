namespace FastNotebooks.Tests.Platform;

/// <summary>The library's glibc tuning (<see cref="NativeHeap"/>) is in effect wherever glibc is the C library.</summary>
public class NativeHeapTests
{
    [Fact]
    public void Loading_the_library_tunes_glibc_unless_opted_out()
    {
        string[] glibcPaths = { "/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/lib64/libc.so.6", "/usr/lib/libc.so.6" };
        bool glibc = OperatingSystem.IsLinux() && glibcPaths.Any(File.Exists);
        bool optedOut = Environment.GetEnvironmentVariable("FASTNOTEBOOKS_DEFAULT_MALLOC") == "1";
        Assert.Equal(glibc && !optedOut, NativeHeap.Tuned);
    }
}
