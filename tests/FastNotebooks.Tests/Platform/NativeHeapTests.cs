using static TorchSharp.torch;

namespace FastNotebooks.Tests.Platform;

/// <summary>Runs alone: other tests' allocations would take the freed block the page-reuse test allocates again.</summary>
[CollectionDefinition("C heap", DisableParallelization = true)]
public class CHeapCollection;

/// <summary>The library's glibc tuning (<see cref="NativeHeap"/>) is in effect wherever glibc is the C library.</summary>
[Collection("C heap")]
public class NativeHeapTests
{
    [Fact]
    public void Loading_the_library_tunes_glibc_unless_opted_out()
    {
        bool optedOut = Environment.GetEnvironmentVariable("FASTNOTEBOOKS_DEFAULT_MALLOC") == "1";
        Assert.Equal(Glibc && !optedOut, NativeHeap.Tuned);
    }

    /// <summary>
    /// A 40 MB tensor (above the 32 MiB that glibc maps with mmap whatever its threshold), freed and allocated again, lands on
    /// pages the process already has: writing it takes far fewer page faults than its 9766 pages. The faults are the measuring
    /// thread's own and the tensor is written from it (libtorch's workers and the test runner fault pages of their own); three
    /// tries are allowed. It measures on a new thread with a glibc arena of its own (the arena limit raised first): on a test
    /// runner thread the outcome depended on which arena that thread shared with others — when the shared arena's first heap had
    /// no room, glibc put the block in an extra heap and unmapped it on free (one failure in seven runs of the suite).
    /// </summary>
    [SkippableFact]
    public void A_large_tensor_freed_and_allocated_again_reuses_its_pages()
    {
        Skip.IfNot(File.Exists("/proc/thread-self/stat"), "no /proc/thread-self/stat (not Linux): page faults per thread cannot be counted here.");
        Skip.If(Environment.GetEnvironmentVariable("FASTNOTEBOOKS_DEFAULT_MALLOC") == "1",
            "FASTNOTEBOOKS_DEFAULT_MALLOC=1 opts out of the C-heap tuning this test measures.");
        Skip.IfNot(Glibc, "the C library is not glibc: there is no heap tuning to measure.");
        Assert.True(NativeHeap.Tuned, "the library did not tune glibc's heap, so freed blocks go back to the system");
        Assert.Equal(1, Mallopt(ArenaMax, 1024));   // a new thread then gets an arena of its own
        Exception? failure = null;
        var thread = new Thread(() => { try { MeasureReuse(); } catch (Exception e) { failure = e; } });
        thread.Start();
        thread.Join();
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
    }

    const int ArenaMax = -8;   // glibc's M_ARENA_MAX

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mallopt")]
    static extern int Mallopt(int parameter, int value);

    static void MeasureReuse()
    {
        const long floats = 10_000_000;
        long pages = floats * sizeof(float) / Environment.SystemPageSize;
        using (var first = empty(floats)) Write(first, 1f);
        var faults = new List<long>();
        for (int attempt = 0; attempt < 3; attempt++)
        {
            long before = ThreadMinorFaults();
            using (var again = empty(floats)) Write(again, 2f);
            faults.Add(ThreadMinorFaults() - before);
            if (faults[^1] < pages / 10) return;
        }
        Assert.Fail($"writing a reallocated 40 MB tensor took {string.Join(", ", faults)} page faults on this thread ({pages} pages)");
    }

    static bool Glibc => OperatingSystem.IsLinux() &&
        new[] { "/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/lib64/libc.so.6", "/usr/lib/libc.so.6" }.Any(File.Exists);

    /// <summary>Fills the tensor's memory from the calling thread (libtorch's own fill may hand parts to its worker threads).</summary>
    static void Write(TorchSharp.torch.Tensor tensor, float value) =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(tensor.bytes).Fill(value);

    /// <summary>Minor page faults of the calling thread so far (/proc/thread-self/stat, field 10).</summary>
    static long ThreadMinorFaults() => long.Parse(File.ReadAllText("/proc/thread-self/stat").Split(") ")[1].Split(' ')[7]);
}
