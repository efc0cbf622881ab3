using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FastNotebooks;

/// <summary>
/// Keeps glibc from handing libtorch's chunk-sized buffers back to the kernel after every use. The kernels allocate
/// and free temporaries of 1–30 MB per chunk; by default glibc serves such blocks with mmap, or trims them off the
/// heap top as soon as a few MB are free, so the next chunk faults in fresh zeroed pages. With blocks under
/// <see cref="MmapThresholdBytes"/> kept on the heap and up to <see cref="TrimThresholdBytes"/> of free heap top kept,
/// Fastmax p = 2 at N = 4096, D = 64 ran its backward in 89–94 ms instead of 140–157 ms on the 2-core reference
/// machine (environment.md). Applied once when the library loads, on Linux with glibc only; set
/// <c>FASTNOTEBOOKS_DEFAULT_MALLOC=1</c> to keep glibc's defaults.
/// </summary>
public static class NativeHeap
{
    /// <summary>Blocks below this size come from the heap, not from mmap.</summary>
    public const int MmapThresholdBytes = 32 << 20;

    /// <summary>Free memory at the heap top is returned to the kernel only beyond this size.</summary>
    public const int TrimThresholdBytes = 256 << 20;

    /// <summary>True when the thresholds above are in effect.</summary>
    public static bool Tuned { get; private set; }

#pragma warning disable CA2255 // A library initializer on purpose: notebooks load the library by #r, before any call could tune the heap.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Initialize()
    {
        if (Environment.GetEnvironmentVariable("FASTNOTEBOOKS_DEFAULT_MALLOC") == "1" || !OperatingSystem.IsLinux()) return;
        try
        {
            Tuned = Mallopt(MmapThreshold, MmapThresholdBytes) == 1 & Mallopt(TrimThreshold, TrimThresholdBytes) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            Tuned = false; // not glibc (musl): its allocator has no such switches
        }
    }

    const int TrimThreshold = -1, MmapThreshold = -3; // glibc's M_TRIM_THRESHOLD, M_MMAP_THRESHOLD

    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int Mallopt(int parameter, int value);
}
