using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using FastNotebooks.Attention.Fastmax.TensorOps;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// The per-token loops of <see cref="MaxNormLoops"/> for float32 tokens of D a multiple of 16 with AVX-512: the same steps in the
/// same order as the generic loops (centre as x + (−Σx / D), norm √(c·c), combine a·α + b·β, centre again, divide), on pointers
/// and zmm registers. The generic loops' span helpers are not inlined where the bench compiles without tiering, and at D = 32 their
/// per-token calls cost more than the arithmetic (PERF.md, "Max-norm loops in zmm registers"). Within these forms each step has one
/// rounding order, so the causal one-pass forms give the bits of the steps they replace, as the generic ones do (MaxNormLoopsTests).
/// </summary>
internal static unsafe class MaxNormZmm
{
    /// <summary>Whether these forms take tokens of <paramref name="d"/> floats on this CPU.</summary>
    public static bool Takes(int d) => d > 0 && d % 16 == 0 && Vector512.IsHardwareAccelerated;

    /// <summary>A token of 32 floats in two registers, centred (x + (−Σx / 32), as <see cref="Shift"/> centres) when asked.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static (Vector512<float> Low, Vector512<float> High) Token32(float* x, bool centre)
    {
        var (a, b) = (Vector512.Load(x), Vector512.Load(x + 16));
        if (!centre) return (a, b);
        var shift = Vector512.Create(-Vector512.Sum(a + b) / 32);
        return (a + shift, b + shift);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Sum(float* x, int d)
    {
        var sum = Vector512.Load(x);
        for (int i = 16; i < d; i += 16) sum += Vector512.Load(x + i);
        return Vector512.Sum(sum);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Dot(float* a, float* b, int d)
    {
        if (d == 32) return Vector512.Sum(Vector512.Load(a) * Vector512.Load(b) + Vector512.Load(a + 16) * Vector512.Load(b + 16));
        var sum = Vector512.Load(a) * Vector512.Load(b);
        for (int i = 16; i < d; i += 16) sum += Vector512.Load(a + i) * Vector512.Load(b + i);
        return Vector512.Sum(sum);
    }

    /// <summary>y = x + s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Shift(float* x, float s, float* y, int d)
    {
        var shift = Vector512.Create(s);
        for (int i = 0; i < d; i += 16) (Vector512.Load(x + i) + shift).Store(y + i);
    }

    /// <summary>r = a·α + b·β, then minus its mean when <paramref name="centre"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void CentredCombine(float* a, float alpha, float* b, float beta, float* r, int d, bool centre)
    {
        var (va, vb) = (Vector512.Create(alpha), Vector512.Create(beta));
        if (d == 32)
        {
            var r0 = Vector512.Load(a) * va + Vector512.Load(b) * vb;
            var r1 = Vector512.Load(a + 16) * va + Vector512.Load(b + 16) * vb;
            if (centre)
            {
                var shift = Vector512.Create(-Vector512.Sum(r0 + r1) / d);
                (r0, r1) = (r0 + shift, r1 + shift);
            }
            r0.Store(r);
            r1.Store(r + 16);
            return;
        }
        for (int i = 0; i < d; i += 16) (Vector512.Load(a + i) * va + Vector512.Load(b + i) * vb).Store(r + i);
        if (centre) Shift(r, -Sum(r, d) / d, r, d);
    }

    /// <summary>c = x − mean(x) (or x) into <paramref name="c"/>; returns ‖c‖.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float CentreAndNorm(float* x, float* c, int d, bool centre)
    {
        if (d == 32)   // the common head size: the token stays in two registers
        {
            var (a, b) = Token32(x, centre);
            a.Store(c);
            b.Store(c + 16);
            return MathF.Sqrt(Vector512.Sum(a * a + b * b));
        }
        Shift(x, centre ? -Sum(x, d) / d : 0f, c, d);
        return MathF.Sqrt(Dot(c, c, d));
    }

    /// <summary><see cref="MaxNormLoops.CentreAndNorm(TorchSharp.torch.Tensor, bool)"/> for tokens [start, start + count).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void CentreAndNorm(float* x, float* c, float* norms, long start, long count, int d, bool centre)
    {
        for (long t = start; t < start + count; t++) norms[t] = CentreAndNorm(x + t * d, c + t * d, d, centre);
    }

    /// <summary>
    /// The unmasked max-norm forward of one slice of n tokens in two passes: the norms n_t (written) and the first token with the
    /// largest, then y_t = c_t / max(m, floor). Returns m and its token.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static (float Largest, long Holder) SharedNormalized(float* x, float* y, float* norms, long n, int d, bool centre)
    {
        float largest = 0;
        long holder = 0;
        for (long t = 0; t < n; t++)
        {
            float norm = CentreAndNorm(x + t * d, y + t * d, d, centre);   // c_t into y, divided below
            norms[t] = norm;
            if (t == 0 || norm > largest) (largest, holder) = (norm, t);
        }
        var scale = Vector512.Create(MathF.Max(largest, (float)FastmaxNormalizer.NormFloor));
        for (long e = 0; e < n * d; e += 16) (Vector512.Load(y + e) / scale).Store(y + e);
        return (largest, holder);
    }

    /// <summary>The causal max-norm forward of one slice: <see cref="MaxNormLoops.RunningNormalized"/>'s per-slice loop.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunningNormalized(float* x, float* y, float* norms, float* largest, long* holders, float* scale, long n, int d, bool centre)
    {
        float floor = (float)FastmaxNormalizer.NormFloor, running = 0;
        long held = 0;
        for (long t = 0; t < n; t++)
        {
            float* yt = y + t * d;
            float norm = CentreAndNorm(x + t * d, yt, d, centre);
            if (t == 0 || norm >= running) (running, held) = (norm, t);
            norms[t] = norm;
            largest[t] = running;
            holders[t] = held;
            float s = MathF.Max(running, floor);
            scale[t] = s;
            var divisor = Vector512.Create(s);
            for (int i = 0; i < d; i += 16) (Vector512.Load(yt + i) / divisor).Store(yt + i);
        }
    }

    /// <summary>a_t·b_t for tokens [start, start + count).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TokenDots(float* a, float* b, float* dots, long start, long count, int d)
    {
        for (long t = start; t < start + count; t++) dots[t] = Dot(a + t * d, b + t * d, d);
    }

    /// <summary>α_t·a_t + β_t·b_t, centred when asked, for tokens [start, start + count).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void CentredCombination(float* a, float* b, float* alphas, float* betas, float* r, long start, long count, int d, bool centre)
    {
        for (long t = start; t < start + count; t++) CentredCombine(a + t * d, alphas[t], b + t * d, betas[t], r + t * d, d, centre);
    }

    /// <summary>
    /// The unmasked max-norm backward of one slice (<see cref="MaxNormLoops.SharedScaleGradient"/>): Σ_t dy_t·y_t, then
    /// dx_t = dy_t / m′ + β·y_t, β non-zero at the holder only, centred when asked.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SharedScaleGradient(float* dy, float* y, float* r, long n, int d, float scale, float holderNorm, long holder, bool active, bool centre)
    {
        float dScale = 0;
        for (long t = 0; t < n; t++) dScale += Dot(dy + t * d, y + t * d, d);
        float norm = MathF.Max(holderNorm, (float)FastmaxNormalizer.NormFloor);
        float beta = active ? -dScale / scale * (scale / norm) : 0f, alpha = 1f / scale;
        for (long t = 0; t < n; t++)
            CentredCombine(dy + t * d, alpha, y + t * d, t == holder ? beta : 0f, r + t * d, d, centre);
    }

    /// <summary>The causal max-norm backward of one slice (<see cref="MaxNormLoops.RunningScaleGradient"/>); dNorms holds n zeros.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunningScaleGradient(float* dy, float* y, float* r, float* norms, float* scale, long* holders, bool* active, float* dNorms,
        long n, int d, bool centre)
    {
        for (long t = 0; t < n; t++)
            dNorms[holders[t]] += (-Dot(dy + t * d, y + t * d, d) / scale[t]) * (active[t] ? 1f : 0f);
        float floor = (float)FastmaxNormalizer.NormFloor;
        for (long t = 0; t < n; t++)
            CentredCombine(dy + t * d, 1f / scale[t], y + t * d, dNorms[t] * (scale[t] / MathF.Max(norms[t], floor)), r + t * d, d, centre);
    }
}
