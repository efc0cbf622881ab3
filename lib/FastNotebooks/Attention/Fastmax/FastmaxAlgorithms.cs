namespace FastNotebooks.Attention.Fastmax;

/// <summary>How Fastmax is computed; every choice gives the same function (up to rounding).</summary>
public enum FastmaxAlgorithm
{
    /// <summary>Factorized moments (chunked when causal): O(N·F·Dv), the paper's linear-time form. The default.</summary>
    Factorized,
    /// <summary>The N×N form (<see cref="FastmaxQuadratic"/>): O(Nq·Nk·(D + Dv)); cheaper for short sequences.</summary>
    Quadratic,
    /// <summary>Whichever of the two is faster for the shapes at hand (<see cref="FastmaxAlgorithms.Choose"/>); what the models use.</summary>
    Auto,
}

public static class FastmaxAlgorithms
{
    /// <summary>Largest score tensor (all batches and heads) the quadratic form may build under Auto: 64 MiB in float32.</summary>
    public const long MaxQuadraticScores = 1L << 24;

    /// <summary>
    /// The algorithm <paramref name="requested"/> stands for at these shapes. Auto picks the N×N form when there are
    /// fewer keys than about half the feature count F (at least 64 for p ≥ 2; 64 and causal only for p = 1, whose
    /// closed form has no features to save) and the scores stay under <see cref="MaxQuadraticScores"/>. Measured
    /// (one layer's forward + backward, B·H = 8–512, D = 8–64): the N×N form was 1.6–40× faster below these lengths
    /// and the crossover lay above them (D = 8: N ≈ 128; D = 32: N ≈ 400; D = 64: N > 1024).
    /// </summary>
    public static FastmaxAlgorithm Choose(FastmaxAlgorithm requested, int order, bool causal, long heads, long nq, long nk, long d)
    {
        if (requested != FastmaxAlgorithm.Auto) return requested;
        if (heads * nq * nk > MaxQuadraticScores) return FastmaxAlgorithm.Factorized;
        long limit = order == 1 ? (causal ? 64 : 0) : Math.Max(64, TaylorFeatures.Size(d, order) / 2);
        return nk <= limit ? FastmaxAlgorithm.Quadratic : FastmaxAlgorithm.Factorized;
    }
}
