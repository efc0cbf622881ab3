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
    /// tries on each of up to three new threads, each meant to get a glibc arena of its own (the arena limit raised first). On a
    /// test runner thread alone the outcome depended on the arena that thread shared with others, and it failed once in seven
    /// runs of the suite; on one new thread it still failed once in a fresh-clone run (2528 to 9767 faults). Which arena states
    /// give the pages back is not understood yet; without the tuning every try on every thread faults in all pages.
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
        var faults = new List<long>();
        for (int thread = 0; thread < 3; thread++)
        {
            long? reused = null;
            Exception? failure = null;
            var measuring = new Thread(() => { try { reused = MeasureReuse(faults); } catch (Exception e) { failure = e; } });
            measuring.Start();
            measuring.Join();
            if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
            if (reused is not null) return;
        }
        // Without the tuning every try faults in all pages: glibc maps a 40 MB block afresh and unmaps it on free.
        Assert.Fail($"writing a reallocated 40 MB tensor took {string.Join(", ", faults)} page faults on the measuring threads ({PagesOf40Mb} pages)");
    }

    static long PagesOf40Mb => 10_000_000L * sizeof(float) / Environment.SystemPageSize;

    const int ArenaMax = -8;   // glibc's M_ARENA_MAX

    /// <summary>
    /// Scalars nobody disposes (what TorchSharp makes behind <c>add_(Tensor)</c> and <c>x * 2.0</c>) hold C-heap blocks until their
    /// finalizers run; <see cref="NativeHeap.ReleaseUnownedNativeObjects"/> frees them at once. 20,000 of them take at least
    /// 20,000 × 16 bytes of the C heap in use, and the heap in use must fall by that much (mallinfo2, all arenas; the collection
    /// runs alone, so no other test allocates meanwhile).
    /// </summary>
    [SkippableFact]
    public void Releasing_unowned_native_objects_frees_undisposed_scalars()
    {
        Skip.IfNot(Glibc, "the C library is not glibc: mallinfo2 cannot report the heap in use.");
        NativeHeap.ReleaseUnownedNativeObjects();
        long before = CHeap.InUse();
        MakeUndisposedScalars(20_000);
        long held = CHeap.InUse() - before;
        Assert.True(held >= 20_000 * 16, $"20,000 scalars took only {held} bytes of the C heap: the measure does not see them");
        NativeHeap.ReleaseUnownedNativeObjects();
        long left = CHeap.InUse() - before;
        Assert.True(left < held / 4, $"of {held} bytes the undisposed scalars held, {left} are still in use after the release");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static void MakeUndisposedScalars(int count)
    {
        for (int i = 0; i < count; i++) _ = TorchSharp.ScalarExtensionMethods.ToScalar(1.0 + i);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mallopt")]
    static extern int Mallopt(int parameter, int value);

    /// <summary>Three tries on the calling thread; the faults of the first try that reused its pages, or null (all tries added to <paramref name="faults"/>).</summary>
    static long? MeasureReuse(List<long> faults)
    {
        const long floats = 10_000_000;
        using (var first = empty(floats)) Write(first, 1f);
        for (int attempt = 0; attempt < 3; attempt++)
        {
            long before = ThreadMinorFaults();
            using (var again = empty(floats)) Write(again, 2f);
            long taken = ThreadMinorFaults() - before;
            lock (faults) faults.Add(taken);
            if (taken < PagesOf40Mb / 10) return taken;
        }
        return null;
    }

    static bool Glibc => CHeap.Glibc;

    /// <summary>Fills the tensor's memory from the calling thread (libtorch's own fill may hand parts to its worker threads).</summary>
    static void Write(TorchSharp.torch.Tensor tensor, float value) =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(tensor.bytes).Fill(value);

    /// <summary>Minor page faults of the calling thread so far (/proc/thread-self/stat, field 10).</summary>
    static long ThreadMinorFaults() => long.Parse(File.ReadAllText("/proc/thread-self/stat").Split(") ")[1].Split(' ')[7]);
}

/// <summary>glibc's heap as the C-heap tests measure it.</summary>
static class CHeap
{
    public static bool Glibc => OperatingSystem.IsLinux() &&
        new[] { "/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/lib64/libc.so.6", "/usr/lib/libc.so.6" }.Any(File.Exists);

    /// <summary>Bytes of the C heap in use, over all arenas (mallinfo2).</summary>
    public static long InUse() => (long)MallInfo().InUse;

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    struct MallInfo2
    {
        public nuint Arena, OrdBlks, SmBlks, HBlks, HBlkHd, USmBlks, FSmBlks, InUse, Free, KeepCost;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mallinfo2")]
    static extern MallInfo2 MallInfo();
}
