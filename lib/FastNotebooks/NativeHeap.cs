using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FastNotebooks;

/// <summary>
/// Keeps glibc from handing libtorch's tensor buffers back to the kernel after every use, so that the next tensor of the
/// same size does not fault in fresh zeroed pages (each a kernel round trip; environment.md, "The C heap"). By default glibc
/// serves blocks from 128 KiB up with mmap and unmaps them on free, and it trims the heap top as soon as a few MB are free.
/// With mmap off (<c>M_MMAP_MAX</c> = 0) every block comes from the heap, and up to <see cref="TrimThresholdBytes"/> of free
/// heap top is kept. A threshold alone cannot do it: glibc caps <c>M_MMAP_THRESHOLD</c> at 32 MiB, and a [64, 8, 512, 32]
/// float32 tensor is 32 MiB (the measurements that led here are in PERF.md). Applied once when the library loads, on Linux with glibc only; set
/// <c>FASTNOTEBOOKS_DEFAULT_MALLOC=1</c> to keep glibc's defaults.
/// </summary>
public static class NativeHeap
{
    /// <summary>Free memory at the heap top is returned to the kernel only beyond this size.</summary>
    public const int TrimThresholdBytes = 256 << 20;

    /// <summary>True when the settings above are in effect.</summary>
    public static bool Tuned { get; private set; }

#pragma warning disable CA2255 // A library initializer on purpose: notebooks load the library by #r, before any call could tune the heap.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Initialize()
    {
        if (Environment.GetEnvironmentVariable("FASTNOTEBOOKS_DEFAULT_MALLOC") == "1" || !OperatingSystem.IsLinux()) return;
        try
        {
            Tuned = Mallopt(MmapMax, 0) == 1 & Mallopt(TrimThreshold, TrimThresholdBytes) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            Tuned = false; // not glibc (musl): its allocator has no such switches
        }
    }

    /// <summary>
    /// Frees the native objects that only the .NET finalizer frees, now: a blocking gen-0 collection and its finalizers. TorchSharp
    /// leaves small C-heap blocks that no dispose scope owns behind many calls (<c>shape</c> and <c>stride()</c> hand the native side a
    /// fresh callback; <c>add_(Tensor)</c> passes alpha = 1 as a new <c>Scalar</c>, <c>x * 2.0</c> another), and a training step
    /// allocates too little managed memory for a collection to come by itself. Left among the step's large tensor blocks, these
    /// small blocks keep freed blocks from merging, so the heap grows and every step touches fresh pages (measurements: PERF.md,
    /// "the model step"). The library's own code avoids them where it runs per call (<see cref="TensorShape"/>); training loops
    /// call this once a step (<see cref="Training.Trainer"/>, the bench's training step).
    /// </summary>
    public static void ReleaseUnownedNativeObjects()
    {
        GC.Collect(0, GCCollectionMode.Forced, blocking: true);
        GC.WaitForPendingFinalizers();
    }

    const int TrimThreshold = -1, MmapMax = -4; // glibc's M_TRIM_THRESHOLD, M_MMAP_MAX

    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int Mallopt(int parameter, int value);
}
