namespace FastNotebooks.Data;

/// <summary>
/// Deterministic seed mixing (SplitMix64), the same in every process — unlike HashCode.Combine, which .NET randomizes
/// per process and so would break resuming a run in a new process.
/// </summary>
public static class Seeds
{
    public static int Mix(params long[] parts)
    {
        ulong state = 0x9E3779B97F4A7C15UL;
        foreach (var part in parts)
        {
            state ^= unchecked((ulong)part);
            state = unchecked(state + 0x9E3779B97F4A7C15UL);
            ulong z = state;
            z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
            z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
            state = z ^ (z >> 31);
        }
        return (int)(state & int.MaxValue);
    }
}
