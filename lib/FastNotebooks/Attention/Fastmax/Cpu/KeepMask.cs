using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;
using static FastNotebooks.Attention.Fastmax.Cpu.TokenLoops;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// Inverted-dropout masks (entries 0 or 1/keep, each kept with probability keep) drawn by a counter-based hash
/// (SplitMix64 of seed + index) from one seed taken from libtorch's default generator, so a run that seeds libtorch
/// draws the same masks again, whatever the thread count. libtorch's own Bernoulli sampling of a quadratic-term mask was
/// most of a training step in the paper's MNIST model (PERF.md).
/// </summary>
internal static class KeepMask
{
    /// <summary>True where a mask for <paramref name="x"/> is drawn here: CPU float32 or float64 within one span.</summary>
    public static bool Supports(Tensor x) => Readable(x) && x.numel() * x.ElementSize < int.MaxValue;

    /// <summary>A mask of <paramref name="shape"/> in <paramref name="dtype"/> on the CPU; keep in (0, 1].</summary>
    public static Tensor Draw(long[] shape, double keep, ScalarType dtype)
    {
        if (!(keep > 0 && keep <= 1)) throw new ArgumentOutOfRangeException(nameof(keep), keep, "keep probability must be in (0, 1]");
        if (dtype is not (ScalarType.Float32 or ScalarType.Float64)) throw new ArgumentException($"mask dtype must be float32 or float64; got {dtype}.", nameof(dtype));
        using var draw = randint(0, int.MaxValue, new long[] { 2 }, dtype: ScalarType.Int64);
        ulong seed = ((ulong)draw[0].item<long>() << 31) ^ (ulong)draw[1].item<long>();
        var mask = empty(shape, dtype: dtype);
        // Each hash gives two entries, one per 32-bit half: kept when the half, as a fraction of 2^32, falls below keep.
        ulong threshold = (ulong)Math.Round(keep * (1UL << 32));
        long count = mask.numel();
        ForTokenRanges(count, 1, (start, length) =>
        {
            if (dtype == ScalarType.Float32) Fill(mask, seed, threshold, (float)(1 / keep), start, length);
            else Fill(mask, seed, threshold, 1 / keep, start, length);
        });
        return mask;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Fill<T>(Tensor mask, ulong seed, ulong threshold, T scale, long start, long length) where T : unmanaged
    {
        var m = Elements<T>(mask);
        ulong hash = 0;
        for (long i = start; i < start + length; i++)
        {
            if (i == start || (i & 1) == 0) hash = Hash(seed + (ulong)(i >> 1) * 0x9E3779B97F4A7C15UL);
            m[(int)i] = ((i & 1) == 0 ? hash & 0xFFFFFFFFUL : hash >> 32) < threshold ? scale : default;
        }
    }

    /// <summary>SplitMix64's output function.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static ulong Hash(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
