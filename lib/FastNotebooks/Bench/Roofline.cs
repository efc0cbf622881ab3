using static TorchSharp.torch;

namespace FastNotebooks.Bench;

/// <summary>The machine's attainable matmul rate, measured in this process with libtorch (same threads, same load).</summary>
public static class Roofline
{
    /// <summary>GFLOP/s of an n×n×n float32 matmul (2n³ flops), median of <paramref name="repeats"/> runs.</summary>
    public static double MeasureGemmGflops(int n = 2048, int repeats = 5)
    {
        using var scope = NewDisposeScope();
        var a = randn(n, n);
        var b = randn(n, n);
        double ms = Timing.Median(() => { using var c = a.mm(b); }, repeats);
        return FlopCounts.Gemm(n, n, n) / (ms * 1e6);
    }
}
