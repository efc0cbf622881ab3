using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// Short float32 row operations on pointers in zmm registers, a scalar tail for lengths that are not a multiple of 16: the small work
/// the order-1 kernels do on each row (<see cref="FirstOrderTiles"/>, <see cref="FirstOrderCausalScans"/>). The span helpers of <see cref="TokenLoops"/> do the
/// same on 8 lanes through spans, whose calls were not inlined where the bench compiles without tiering (PERF.md, "Max-norm loops in
/// zmm registers"). Callers check <see cref="Vector512.IsHardwareAccelerated"/> (the tiles need it).
/// </summary>
internal static unsafe class RowZmm
{
    /// <summary>a · b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(float* a, float* b, int n)
    {
        var sum = Vector512<float>.Zero;
        int i = 0;
        for (; i + 16 <= n; i += 16) sum += Vector512.Load(a + i) * Vector512.Load(b + i);
        float total = Vector512.Sum(sum);
        for (; i < n; i++) total += a[i] * b[i];
        return total;
    }

    /// <summary>y = (x + b) / s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddThenDivide(float* x, float* b, float s, float* y, int n)
    {
        var divisor = Vector512.Create(s);
        int i = 0;
        for (; i + 16 <= n; i += 16) ((Vector512.Load(x + i) + Vector512.Load(b + i)) / divisor).Store(y + i);
        for (; i < n; i++) y[i] = (x[i] + b[i]) / s;
    }

    /// <summary>y = x + w·s (y may be x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddScaled(float* x, float* w, float s, float* y, int n)
    {
        var scale = Vector512.Create(s);
        int i = 0;
        for (; i + 16 <= n; i += 16) (Vector512.Load(x + i) + Vector512.Load(w + i) * scale).Store(y + i);
        for (; i < n; i++) y[i] = x[i] + w[i] * s;
    }

    /// <summary>y = x + b (y may be x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Add(float* x, float* b, float* y, int n)
    {
        int i = 0;
        for (; i + 16 <= n; i += 16) (Vector512.Load(x + i) + Vector512.Load(b + i)).Store(y + i);
        for (; i < n; i++) y[i] = x[i] + b[i];
    }

    /// <summary>y = x·s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale(float* x, float s, float* y, int n)
    {
        var scale = Vector512.Create(s);
        int i = 0;
        for (; i + 16 <= n; i += 16) (Vector512.Load(x + i) * scale).Store(y + i);
        for (; i < n; i++) y[i] = x[i] * s;
    }

    /// <summary>y = x / s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Divide(float* x, float s, float* y, int n)
    {
        var divisor = Vector512.Create(s);
        int i = 0;
        for (; i + 16 <= n; i += 16) (Vector512.Load(x + i) / divisor).Store(y + i);
        for (; i < n; i++) y[i] = x[i] / s;
    }
}
