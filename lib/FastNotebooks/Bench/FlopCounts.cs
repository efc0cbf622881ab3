namespace FastNotebooks.Bench;

/// <summary>
/// Flops an algorithm needs (multiply and add counted separately), the yardstick for GFLOP/s. Fastmax counts
/// only the two products of its symmetric factorization (README.md beside the kernels, "Unmasked").
/// </summary>
public static class FlopCounts
{
    /// <summary>2·m·n·k for an [m, k]·[k, n] product.</summary>
    public static double Gemm(long m, long n, long k) => 2.0 * m * n * k;

    /// <summary>Symmetric Taylor features of order ≤ p over D coordinates (<see cref="Attention.Fastmax.Reference.TaylorFeatures.Size"/>).</summary>
    public static long FeatureSize(long d, int order) => Attention.Fastmax.Reference.TaylorFeatures.Size(d, order);

    /// <summary>
    /// Unmasked Fastmax forward per head: the key state Σ φ(k)ᵀ[v, 1] and the query product φ(q)·S, 4·N·F·(Dv + 1)
    /// (the causal form does the same plus its intra-chunk blocks, which this does not count).
    /// </summary>
    public static double FastmaxForward(long n, long d, long dv, int order) => 4.0 * n * FeatureSize(d, order) * (dv + 1);

    /// <summary>Softmax attention forward per head: q·kᵀ and A·v, 4·N²·D (half of it when causal).</summary>
    public static double SoftmaxForward(long n, long d, bool causal = false) => (causal ? 2.0 : 4.0) * n * n * d;
}
