using System.Globalization;
using System.Runtime.InteropServices;

namespace FastNotebooks;

/// <summary>
/// Shortens how long libtorch's OpenMP threads (GNU libgomp) spin after each parallel op before they sleep: 300,000 turns of
/// a wait loop by default, in which such a thread holds a core. On a 2-core machine that is the core the
/// Fastmax head-group threads (<see cref="Attention.Fastmax.Cpu.HeadThreads"/>) start on right after an op on the calling thread
/// (PERF.md, "the OpenMP spin"). libgomp reads <c>GOMP_SPINCOUNT</c> once, when libtorch is loaded, so
/// <see cref="Apply"/> must run before the first TorchSharp call: the bench and the notebook runner call it first thing, and
/// their child processes inherit it. A value the user set (or an <c>OMP_WAIT_POLICY</c>) is kept.
/// </summary>
public static class OpenMpSpin
{
    /// <summary>Turns of libgomp's wait loop before a thread sleeps.</summary>
    public const int SpinCount = 10_000;

    /// <summary>Sets <c>GOMP_SPINCOUNT</c> = <see cref="SpinCount"/> for this process and its children unless either variable is set; true when it did.</summary>
    public static bool Apply()
    {
        if (ValueFor(Environment.GetEnvironmentVariable("GOMP_SPINCOUNT"), Environment.GetEnvironmentVariable("OMP_WAIT_POLICY"), OperatingSystem.IsLinux()) is not string value)
            return false;
        Environment.SetEnvironmentVariable("GOMP_SPINCOUNT", value);   // what child processes get
        try
        {
            return SetEnvironment("GOMP_SPINCOUNT", value, 0) == 0;     // what libgomp reads in this process
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>The value to set, or null: on Linux, when neither the spin count nor a wait policy is given.</summary>
    internal static string? ValueFor(string? spinCount, string? waitPolicy, bool linux) =>
        linux && string.IsNullOrEmpty(spinCount) && string.IsNullOrEmpty(waitPolicy) ? SpinCount.ToString(CultureInfo.InvariantCulture) : null;

    [DllImport("libc", EntryPoint = "setenv")]
    static extern int SetEnvironment(string name, string value, int overwrite);
}
