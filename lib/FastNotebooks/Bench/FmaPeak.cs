using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FastNotebooks.Bench;

/// <summary>
/// The CPU's float32 multiply-add peak, measured: a loop of vector FMAs on independent accumulators that never leave the
/// registers (no loads, no stores), so nothing but the FMA units bounds it. Twelve chains hide the FMA latency (4 cycles)
/// on two FMA ports (4 × 2 = 8 needed; 12 leaves slack) while fitting the 32 vector registers with room to spare. Each
/// thread runs its own loop; the rate is the sum. This is the roofline the kernels are measured against: libtorch's GEMM
/// rate is what one library reaches, this is what the silicon allows.
/// </summary>
public static class FmaPeak
{
    /// <summary>
    /// Iterations of the 12-chain loop per timed run (12 FMAs each): a few tens of milliseconds, short enough that on a shared
    /// machine some of the runs go undisturbed (the rate is the fastest run's).
    /// </summary>
    const long Iterations = 2_000_000;

    /// <summary>True when the CPU has a vector FMA the loop can use (AVX-512F, else AVX2 FMA3).</summary>
    public static bool Supported => Avx512F.IsSupported || Fma.IsSupported;

    /// <summary>Vector width in float32 lanes of the loop: 16 with AVX-512, 8 with AVX2 FMA.</summary>
    public static int Lanes => Avx512F.IsSupported ? 16 : 8;

    /// <summary>
    /// GFLOP/s (an FMA counts as two flops) of <paramref name="threads"/> threads each running the loop, fastest of
    /// <paramref name="repeats"/> runs after one warm-up; null when the CPU has no vector FMA.
    /// </summary>
    public static double? Measure(int threads = 1, int repeats = 30)
    {
        if (threads < 1) throw new ArgumentException($"threads must be at least 1; got {threads}.", nameof(threads));
        if (!Supported) return null;
        double best = 0;
        for (int r = 0; r <= repeats; r++)
        {
            var rates = new double[threads];
            using var start = new Barrier(threads);
            var workers = Enumerable.Range(0, threads).Select(i => new Thread(() =>
            {
                start.SignalAndWait();
                rates[i] = Once()!.Value;
            })).ToList();
            workers.ForEach(w => w.Start());
            workers.ForEach(w => w.Join());
            double rate = rates.Sum();
            if (r > 0) best = Math.Max(best, rate);
        }
        return best;
    }

    /// <summary>
    /// One run of the loop on the calling thread: GFLOP/s, or null when the CPU has no vector FMA. The thread that runs a
    /// kernel runs this too, so the two meet the same core and clock.
    /// </summary>
    public static double? Once()
    {
        if (!Supported) return null;
        var clock = Stopwatch.StartNew();
        float sink = Avx512F.IsSupported ? Loop512(Iterations) : Loop256(Iterations);
        double seconds = clock.Elapsed.TotalSeconds;
        if (sink == 42) Console.Write("");   // keeps the result alive
        return Iterations * 12.0 * 2 * Lanes / seconds / 1e9;
    }

    /// <summary>
    /// <paramref name="call"/> (<paramref name="flops"/> a call) against the peak measured alternately with it on the calling
    /// thread: after one untimed call and loop, <paramref name="rounds"/> rounds of one loop and <see cref="CallsPerRound"/> calls
    /// back to back, the order swapped every round, so a clock that changes over a run (a shared machine's boost) moves both;
    /// the fastest call against the fastest loop. The calls go in runs because the first call after anything else (a loop, a
    /// sleep or a spin alike) ran slower than calls back to back (PERF.md, "The peak beside the kernel"): runs measure the same
    /// steady state as the kernels section's repeats. Null when the CPU has no vector FMA.
    /// </summary>
    public static PairedRate? Paired(Action call, double flops, int rounds = PairedRounds)
    {
        if (rounds < 1) throw new ArgumentException($"rounds must be at least 1; got {rounds}.", nameof(rounds));
        if (!(flops > 0)) throw new ArgumentException($"flops must be positive; got {flops}.", nameof(flops));
        if (!Supported) return null;
        call();
        Once();
        double fastest = double.PositiveInfinity, peak = 0;
        void Calls()
        {
            for (int i = 0; i < CallsPerRound; i++)
            {
                var clock = Stopwatch.StartNew();
                call();
                fastest = Math.Min(fastest, clock.Elapsed.TotalMilliseconds);
            }
        }
        void Loop() => peak = Math.Max(peak, Once()!.Value);
        for (int round = 0; round < rounds; round++)
            if (round % 2 == 0) { Calls(); Loop(); }
            else { Loop(); Calls(); }
        return new PairedRate(fastest, flops / (fastest * 1e6), peak, rounds);
    }

    /// <summary>Calls per round of <see cref="Paired"/>.</summary>
    public const int CallsPerRound = 4;

    /// <summary>Rounds of <see cref="Paired"/> unless told.</summary>
    public const int PairedRounds = 15;

    [MethodImpl(MethodImplOptions.NoInlining)]
    static float Loop512(long iterations)
    {
        var a = Vector512.Create(1.0000001f);
        var b = Vector512.Create(0.9999999f);
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector512<float> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (long i = 0; i < iterations; i++)
        {
            c0 = Avx512F.FusedMultiplyAdd(a, b, c0); c1 = Avx512F.FusedMultiplyAdd(a, b, c1);
            c2 = Avx512F.FusedMultiplyAdd(a, b, c2); c3 = Avx512F.FusedMultiplyAdd(a, b, c3);
            c4 = Avx512F.FusedMultiplyAdd(a, b, c4); c5 = Avx512F.FusedMultiplyAdd(a, b, c5);
            c6 = Avx512F.FusedMultiplyAdd(a, b, c6); c7 = Avx512F.FusedMultiplyAdd(a, b, c7);
            c8 = Avx512F.FusedMultiplyAdd(a, b, c8); c9 = Avx512F.FusedMultiplyAdd(a, b, c9);
            c10 = Avx512F.FusedMultiplyAdd(a, b, c10); c11 = Avx512F.FusedMultiplyAdd(a, b, c11);
        }
        var sum = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11));
        return sum.GetElement(0);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static float Loop256(long iterations)
    {
        var a = Vector256.Create(1.0000001f);
        var b = Vector256.Create(0.9999999f);
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector256<float> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (long i = 0; i < iterations; i++)
        {
            c0 = Fma.MultiplyAdd(a, b, c0); c1 = Fma.MultiplyAdd(a, b, c1); c2 = Fma.MultiplyAdd(a, b, c2); c3 = Fma.MultiplyAdd(a, b, c3);
            c4 = Fma.MultiplyAdd(a, b, c4); c5 = Fma.MultiplyAdd(a, b, c5); c6 = Fma.MultiplyAdd(a, b, c6); c7 = Fma.MultiplyAdd(a, b, c7);
            c8 = Fma.MultiplyAdd(a, b, c8); c9 = Fma.MultiplyAdd(a, b, c9); c10 = Fma.MultiplyAdd(a, b, c10); c11 = Fma.MultiplyAdd(a, b, c11);
        }
        var sum = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11));
        return sum.GetElement(0);
    }
}

/// <summary>A call's fastest time and rate beside the FMA peak measured alternately with it (<see cref="FmaPeak.Paired"/>).</summary>
public sealed record PairedRate(double CallMs, double Gflops, double PeakGflops, int Rounds)
{
    /// <summary>The call's rate as a fraction of the peak measured beside it.</summary>
    public double Fraction => Gflops / PeakGflops;
}
