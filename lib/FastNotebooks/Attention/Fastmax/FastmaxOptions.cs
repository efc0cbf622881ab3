using FastNotebooks.Attention.Fastmax.Reference;
using FastNotebooks.Attention.Fastmax.TensorOps;
namespace FastNotebooks.Attention.Fastmax;

/// <summary>How q and k are scaled before the kernel f(s) is applied (see README.md in this folder, "Normalization").</summary>
public enum FastmaxNormalization
{
    /// <summary>Use q and k as given. |s| is unbounded; with p = 1 the denominator can reach zero.</summary>
    None,
    /// <summary>Subtract each token's mean over D, then divide by the largest token norm over the sequence. Keeps |s| ≤ 1. The default.</summary>
    MeanCentered,
    /// <summary>Divide by the largest token norm over the sequence, without centering. Keeps |s| ≤ 1.</summary>
    ZeroCentered,
    /// <summary>
    /// The authors' CUDA variant: divide by the largest squared token norm, clamped below at 0.1.
    /// For comparison only: it does not keep |s| ≤ 1, so the gradient bound's premise fails.
    /// </summary>
    SquaredNorm,
}

/// <summary>How Fastmax is computed; every choice gives the same function (up to rounding).</summary>
public enum FastmaxAlgorithm
{
    /// <summary>Factorized moments (chunked when causal): O(N·F·Dv), the paper's linear-time form. The default.</summary>
    Factorized,
    /// <summary>The N×N form (<see cref="FastmaxQuadratic"/>): O(Nq·Nk·(D + Dv)); cheaper for short sequences.</summary>
    Quadratic,
    /// <summary>Whichever of the two is faster for the shapes at hand (<see cref="FastmaxDispatch.Algorithm"/>); what the models use.</summary>
    Auto,
}

/// <summary>Which regularizer acts in training mode (all are off in evaluation mode).</summary>
public enum FastmaxDropout
{
    None,
    /// <summary>Dropout on the flattened q⊗q and k⊗k features: only the quadratic term (p = 2).</summary>
    QuadraticTerm,
    /// <summary>Dropout on q and k themselves: the linear term (the natural choice for p = 1).</summary>
    LinearTerm,
    /// <summary>Output multiplied by (1 + rate·ε), ε ~ N(0, 1): the authors' CUDA regularizer.</summary>
    OutputNoise,
}

/// <summary>
/// Options of Fastmax attention: a_ij = f(s_ij) / Σ_l f(s_il), f(s) = Σ_{l≤p} a_l s^l, s_ij = q̂_i·k̂_j / temperature.
/// </summary>
public sealed record FastmaxOptions
{
    /// <summary>Polynomial order p of the kernel: 1, 2 (default; the paper's main setting) or 3.</summary>
    public int Order { get; init; } = 2;

    /// <summary>Coefficients a_0..a_p; null means the Taylor coefficients of exp, 1/l!.</summary>
    public IReadOnlyList<double>? Coefficients { get; init; }

    /// <summary>Divides s. 1 keeps the |s| ≤ 1 guarantee of the normalizations.</summary>
    public double Temperature { get; init; } = 1.0;

    public FastmaxNormalization Normalization { get; init; } = FastmaxNormalization.MeanCentered;

    /// <summary>Query i sees keys j ≤ Nk − Nq + i (the KV-cache convention) when true.</summary>
    public bool Causal { get; init; }

    public FastmaxDropout Dropout { get; init; } = FastmaxDropout.None;

    /// <summary>Rate of the dropout (probability of zeroing) or scale of the output noise.</summary>
    public double DropoutRate { get; init; }

    /// <summary>
    /// Tokens per chunk of the causal kernel (a chunk×chunk dense block inside each chunk; chunks are batched in groups);
    /// null (the default) lets <see cref="FastmaxChunked.DefaultChunk"/> choose by the feature count. The unmasked kernel
    /// uses at least this many tokens per chunk and grows them to about 2^22 feature elements (README.md, "Unmasked").
    /// Working memory stays O(chunk·F) per head, F = 1 + D + D(D+1)/2 for p = 2.
    /// </summary>
    public int? ChunkSize { get; init; }

    /// <summary>
    /// Causal, where a gradient is wanted: the forward keeps the weighted key state before each chunk for the backward (true, the
    /// default), F·(Dv + 1) numbers a chunk per head — 145 a token at D = Dv = 32 (chunk 128), 545 at D = Dv = 64 (chunk 256),
    /// against D·4 + 1 for q̂, k̂, v, o and g —, so the backward does not make them again from the keys (the time this saves:
    /// PERF.md, "The causal key states kept for the backward"). False keeps what a causal call saves at O(N·(D + Dv)) per head.
    /// The same gradients either way, bit for bit.
    /// </summary>
    public bool KeepCausalStates { get; init; } = true;

    /// <summary>The chunk the kernels use for head size <paramref name="d"/>: <see cref="ChunkSize"/> if set, else the default for the order and D.</summary>
    public int ResolvedChunkSize(int d) => ChunkSize ?? FastmaxChunked.DefaultChunk(Order, d);

    /// <summary>
    /// Factorized (default: the linear-time kernel), the N×N form, or Auto (the faster of the two for the shapes; what the
    /// models use). All give the same function; see <see cref="FastmaxDispatch.Algorithm"/>.
    /// </summary>
    public FastmaxAlgorithm Algorithm { get; init; } = FastmaxAlgorithm.Factorized;

    /// <summary>
    /// What computes the factorized kernel: <see cref="FastmaxBackend.Auto"/> (default: the CPU kernels for CPU tensors,
    /// libtorch ops elsewhere), <see cref="FastmaxBackend.Reference"/> (the readable forms), <see cref="FastmaxBackend.TensorOps"/>
    /// (libtorch ops only) or <see cref="FastmaxBackend.Cpu"/>. All give the same function up to rounding; the choice is made in
    /// <see cref="FastmaxDispatch"/>.
    /// </summary>
    public FastmaxBackend Backend { get; init; } = FastmaxBackend.Auto;

    /// <summary>
    /// Working-set budget of the factorized kernels in feature elements (<see cref="KernelPlan.DefaultFeatureChunkElements"/>);
    /// smaller budgets split chunks and heads finer (the tests use this to reach those splits with small inputs).
    /// </summary>
    internal long FeatureChunkElements { get; init; } = KernelPlan.DefaultFeatureChunkElements;

    public static readonly int[] SupportedOrders = { 1, 2, 3 };

    /// <summary>The coefficients in force: the given ones, or 1/l! for l = 0..p.</summary>
    public double[] ResolvedCoefficients()
    {
        Validate();
        if (Coefficients != null) return Coefficients.ToArray();
        var a = new double[Order + 1];
        double factorial = 1;
        for (int l = 0; l <= Order; l++)
        {
            if (l > 0) factorial *= l;
            a[l] = 1.0 / factorial;
        }
        return a;
    }

    /// <summary>Rejects options that no kernel supports, naming the option and its value.</summary>
    public void Validate()
    {
        if (!SupportedOrders.Contains(Order))
            throw new ArgumentException($"Order must be one of {string.Join(", ", SupportedOrders)}; got {Order}.", nameof(Order));
        if (Coefficients != null && Coefficients.Count != Order + 1)
            throw new ArgumentException($"Coefficients must hold a_0..a_p ({Order + 1} values for p = {Order}); got {Coefficients.Count}.", nameof(Coefficients));
        if (Coefficients != null && Coefficients.Any(c => !double.IsFinite(c)))
            throw new ArgumentException($"Coefficients must be finite; got [{string.Join(", ", Coefficients)}].", nameof(Coefficients));
        if (!(Temperature > 0) || !double.IsFinite(Temperature))
            throw new ArgumentException($"Temperature must be positive and finite; got {Temperature}.", nameof(Temperature));
        if (!Enum.IsDefined(Backend))
            throw new ArgumentException($"Backend must be one of {string.Join(", ", Enum.GetNames<FastmaxBackend>())}; got {Backend}.", nameof(Backend));
        if (!Enum.IsDefined(Algorithm))
            throw new ArgumentException($"Algorithm must be one of {string.Join(", ", Enum.GetNames<FastmaxAlgorithm>())}; got {Algorithm}.", nameof(Algorithm));
        if (FeatureChunkElements < 1)
            throw new ArgumentException($"FeatureChunkElements must be at least 1; got {FeatureChunkElements}.", nameof(FeatureChunkElements));
        if (ChunkSize < 1)
            throw new ArgumentException($"ChunkSize must be at least 1; got {ChunkSize}.", nameof(ChunkSize));
        if (DropoutRate < 0 || (Dropout != FastmaxDropout.OutputNoise && DropoutRate >= 1) || !double.IsFinite(DropoutRate))
            throw new ArgumentException($"DropoutRate must be in [0, 1) (or ≥ 0 for output noise); got {DropoutRate}.", nameof(DropoutRate));
        if (Dropout == FastmaxDropout.QuadraticTerm && Order != 2)
            throw new ArgumentException($"Dropout QuadraticTerm needs Order 2; got Order {Order}.", nameof(Dropout));
    }
}
