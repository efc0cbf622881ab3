namespace FastNotebooks.Bench;

/// <summary>
/// Resident memory of this process from /proc/self/status (Linux): VmRSS now and VmHWM, its high-water mark.
/// <see cref="ResetPeak"/> writes 5 to /proc/self/clear_refs, which restarts the high-water mark at the current
/// RSS, so <see cref="PeakGrowth"/> measures what one piece of work added on top of what was resident before.
/// Elsewhere the values are null.
/// </summary>
public static class ProcessMemory
{
    /// <summary>Current resident set size in bytes (VmRSS).</summary>
    public static long? ResidentBytes() => Read("VmRSS:");

    /// <summary>Peak resident set size in bytes since start or the last <see cref="ResetPeak"/> (VmHWM).</summary>
    public static long? PeakBytes() => Read("VmHWM:");

    /// <summary>Restarts the high-water mark at the current RSS; false where the kernel does not allow it.</summary>
    public static bool ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); return true; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException) { return false; }
    }

    /// <summary>Bytes by which the peak RSS rose above the RSS at the start while <paramref name="action"/> ran (null if unknown).</summary>
    public static long? PeakGrowth(Action action)
    {
        GC.Collect();
        // Without this, free pages the C allocator kept from earlier work are reused without faulting, and the growth reads ~0.
        ReleaseFreeMemory();
        bool reset = ResetPeak();
        long? before = ResidentBytes();
        long? peakBefore = PeakBytes();
        action();
        long? peak = PeakBytes();
        if (before is null || peak is null) return null;
        // Without a reset the high-water mark may predate the action; report only what is attributable.
        return reset ? peak - before : Math.Max(0, peak.Value - Math.Max(before.Value, peakBefore ?? 0));
    }

    /// <summary>
    /// Returns the C heap's free pages to the kernel (glibc's malloc_trim), so that the next piece of work has to fault its memory
    /// in and shows up in the RSS; false where there is no glibc.
    /// </summary>
    public static bool ReleaseFreeMemory()
    {
        try { return MallocTrim(0) != 0; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int MallocTrim(nuint pad);

    static long? Read(string key)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(key, StringComparison.Ordinal))
                    return long.Parse(line[key.Length..].Trim().Split(' ')[0]) * 1024; // kB
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return null;
    }
}
