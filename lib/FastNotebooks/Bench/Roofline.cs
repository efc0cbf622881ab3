using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.Cpu;
using static TorchSharp.torch;

namespace FastNotebooks.Bench;

/// <summary>The machine's attainable matmul rate, measured in this process with libtorch (same threads, same load).</summary>
public static class Roofline
{
    /// <summary>GFLOP/s of an n×n×n float32 matmul (2n³ flops), median (or, when <paramref name="best"/>, fastest) of <paramref name="repeats"/> runs.</summary>
    public static double MeasureGemmGflops(int n = 2048, int repeats = 5, bool best = false)
    {
        using var scope = NewDisposeScope();
        var a = randn(n, n);
        var b = randn(n, n);
        Action product = () => { using var c = a.mm(b); };
        double ms = best ? Timing.Best(product, repeats) : Timing.Median(product, repeats);
        return FlopCounts.Gemm(n, n, n) / (ms * 1e6);
    }

    /// <summary>
    /// GFLOP/s of <see cref="SimdGemm"/>'s AVX-512 tiles on the Fastmax forward's chunk product [820 × 561]·[561 × 32]
    /// (D = 32, one chunk of 4096 tokens), in cache as in the kernel, fastest of <paramref name="repeats"/>; null without AVX-512. The tiles' attainable rate
    /// on this CPU, beside libtorch's (on the AMD EPYC machines here its BLAS reaches under half the tiles' rate).
    /// </summary>
    public static double? MeasureTileGflops(int repeats = 21)
    {
        using var scope = NewDisposeScope();
        var a = randn(820, 561);
        var b = randn(561, 32);
        if (!SimdGemm.Supports(a, b)) return null;
        double ms = Timing.Best(() => { using var c = SimdGemm.MatMul(a, b); }, repeats, warmup: 5);
        return FlopCounts.Gemm(820, 561, 32) / (ms * 1e6);
    }
}
