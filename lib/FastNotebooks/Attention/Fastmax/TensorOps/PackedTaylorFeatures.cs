using FastNotebooks.Attention.Fastmax.Cpu;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax.TensorOps;

/// <summary>
/// Taylor features of order p ≤ 2 built without index gathers (README.md, "Packed features"). Append a constant
/// to each token, x̃ = [x, 1] (D̃ = D + 1 entries): every monomial of x of degree ≤ 2 is then a degree-2 monomial
/// x̃_i·x̃_j, so one product of x̃ with its cyclic shifts gives them all. Feature f = i·Rows + d holds
/// x̃_i·x̃_{(i+d) mod D̃}, i = 0..D̃−1, d = 0..⌊D̃/2⌋: the diagonals d and D̃ − d of x̃x̃ᵀ share one row, so for
/// odd D̃ (even D) every monomial appears exactly once and F = 1 + D + D(D+1)/2; for even D̃ the last row repeats
/// its monomials twice (D̃/2 extra features, half weight each). The shifts are windows of [x̃, x̃] (a strided
/// view, <c>unfold</c>), so a chunk of features is one broadcast multiply.
/// Features are bare monomials on both sides; f(x·y) = Σ_f w_f φ_f(x̃) φ_f(ỹ), and the weights w (a_l times the
/// multiplicity) are applied to the F×(Dv+1) states, never to the N×F features.
/// </summary>
public sealed class PackedTaylorFeatures
{
    /// <summary>Coordinates D of x.</summary>
    public int D { get; }

    /// <summary>Order p: 1 or 2.</summary>
    public int Order { get; }

    /// <summary>Entries of x̃ = [x, 1].</summary>
    public int Extended => D + 1;

    /// <summary>Rows of the packed block (p = 2): ⌊D̃/2⌋ + 1.</summary>
    public int Rows => Order == 1 ? 1 : Extended / 2 + 1;

    /// <summary>Features per token: D̃ for p = 1, Rows·D̃ for p = 2.</summary>
    public long Size => (long)Rows * Extended;

    readonly double[] _weights;
    readonly double[] _degrees;

    /// <summary>The weights w as numbers (the CPU loops apply them to the states).</summary>
    internal double[] WeightValues => _weights;

    /// <summary>What this call may run (the CPU kernels or libtorch ops only) and its working-set budget.</summary>
    public KernelPlan Plan { get; }

    /// <param name="d">Coordinates D of x.</param>
    /// <param name="coefficients">a_0..a_p with p ∈ {1, 2}.</param>
    /// <param name="plan">The kernel plan (<see cref="FastmaxDispatch"/>); null means libtorch ops only.</param>
    public PackedTaylorFeatures(int d, IReadOnlyList<double> coefficients, KernelPlan? plan = null)
    {
        Plan = plan ?? KernelPlan.TensorOps;
        if (coefficients.Count is < 2 or > 3)
            throw new ArgumentException($"packed features cover orders 1 and 2; got {coefficients.Count - 1}", nameof(coefficients));
        D = d;
        Order = coefficients.Count - 1;
        int e = Extended;
        _weights = new double[Size];
        _degrees = new double[Size];
        for (int row = 0; row < Rows; row++)
            for (int i = 0; i < e; i++)
            {
                int j = Order == 1 ? e - 1 : (i + row) % e;  // p = 1: the monomial x̃_i·1
                int degree = (i < d ? 1 : 0) + (j < d ? 1 : 0);
                if (Order == 1) degree = i < d ? 1 : 0;
                double multiplicity = Order == 2 && degree == 2 && i != j ? 2 : 1; // (x·y)² counts x_m x_l twice
                if (Order == 2 && e % 2 == 0 && row == e / 2) multiplicity /= 2;   // the repeated last row
                int f = i * Rows + row;
                _weights[f] = coefficients[degree] * multiplicity;
                _degrees[f] = degree;
            }
    }

    /// <summary>
    /// The per-token input of <see cref="Build"/>: [x, 1, x, 1] [..., N, 2D̃] for p = 2, [x, 1] [..., N, D̃] for p = 1.
    /// Built once per tensor (O(N·D)); chunks are narrowed from it.
    /// </summary>
    public Tensor Extend(Tensor x)
    {
        // A per-token loop was tried here and measured slower than the concatenation: both only move memory.
        using var one = ones_like(x.narrow(-1, 0, 1));
        return Order == 1 ? cat(new[] { x, one }, -1) : cat(new[] { x, one, x, one }, -1);
    }

    /// <summary>
    /// The per-token input the plan's pieces take: x itself [..., n, D] where every CPU kernel that reads it builds [x̃, x̃] in
    /// cache (<see cref="KernelPlan.TakesRawInputs"/>: order 2, float32, AVX-512, D̃ ≥ 32), which spares writing and reading
    /// back an extended copy of 2D̃ entries per token; else <see cref="Extend"/>. Every piece takes either: a raw input that
    /// reaches a tensor-op form is extended there.
    /// </summary>
    /// <remarks>Where the pieces centre raw inputs (<see cref="CentresRawInputs"/>) x is always taken raw, so that every gradient is with respect to x.</remarks>
    public Tensor KernelInput(Tensor x) => Plan.TakesRawInputs(this, x) || (CentresRawInputs && IsRaw(x)) ? x.contiguous() : Extend(x);

    /// <summary>Whether x is a raw input [..., n, D] (<see cref="KernelInput"/>) rather than an extended one [..., n, 2D̃].</summary>
    internal bool IsRaw(Tensor x) => Order == 2 && x.size(-1) == D;

    /// <summary>x extended when it is raw (a new tensor, the caller's to dispose; centred first where <see cref="CentresRawInputs"/>), else null.</summary>
    internal Tensor? ExtendedIfRaw(Tensor x)
    {
        if (!IsRaw(x)) return null;
        if (!CentresRawInputs) return Extend(x);
        using var centred = x - x.mean(new long[] { -1 }, keepdim: true);
        return Extend(centred);
    }

    /// <summary>
    /// Whether every piece reads a raw input x [..., n, D] as c = x − mean(x) per token, centred where it builds x̃, and
    /// <see cref="Gradient"/> gives the gradient with respect to x through the centring: the mean-centring of the max-norm
    /// normalization done in cache (<see cref="FoldedNormalization"/>). Extended inputs are taken as they are.
    /// </summary>
    internal bool CentresRawInputs { get; init; }

    /// <summary>
    /// Per (batch, head) slice, s [B, H, 1, 1] or null: <see cref="Weigh"/> multiplies each feature's weight by s^l, l its degree,
    /// so f(s·x·y) is computed from x and y as they are: the max-norms' scales 1/(m_q·m_k) folded into the weights
    /// (<see cref="FoldedNormalization"/>).
    /// </summary>
    internal Tensor? SliceScale { get; init; }

    /// <summary>x̃ [..., n, D̃] as a view of an extended tensor.</summary>
    public Tensor Tilde(Tensor extended) => extended.narrow(-1, 0, Extended);

    /// <summary>
    /// Bare features φ(x̃) [..., n, F] from an extended chunk [..., n, 2D̃]: one loop over the tokens
    /// (<see cref="PackedFeatureLoops"/>) where the plan allows it, else <see cref="BuildByBroadcast"/>.
    /// </summary>
    public Tensor Build(Tensor extended) => Plan.Build(this, extended);

    /// <summary>
    /// φ(x̃)·W [..., n, C] for an extended chunk [..., n, 2D̃] and a weighted state W [..., F, C] with the chunk's leading
    /// dims: on the CPU kernels without storing the features (<see cref="TokenColumns.Project"/>), else <see cref="Build"/>
    /// and a GEMM, its reference.
    /// </summary>
    /// <remarks>With <paramref name="addTo"/> [..., n, C], the product is added to it (in cache where the kernels can), which is returned.</remarks>
    public Tensor Project(Tensor extended, Tensor weightedState, Tensor? addTo = null) => Plan.Project(this, extended, weightedState, addTo);

    /// <summary>
    /// uᵀ·φ(x̃) = Σ_t u_t ⊗ φ(x̃_t) [..., C, F] for an extended chunk [..., n, 2D̃] and u [..., n, C] with equal leading dims: on
    /// the CPU kernels with the features built block by block in cache (<see cref="FeatureStates"/>, any number of tokens
    /// per call), else <see cref="Build"/> and a GEMM, its reference.
    /// </summary>
    /// <remarks>With <paramref name="appendOne"/>, u is given without its last column of ones ([v, 1] as v).</remarks>
    public Tensor StateTransposed(Tensor extended, Tensor u, bool appendOne = false) => Plan.StateTransposed(this, extended, u, appendOne);

    /// <summary><see cref="Build"/> as one broadcast multiply of x̃ with its cyclic shifts (the reference for the loop; autograd goes through it).</summary>
    internal Tensor BuildByBroadcast(Tensor extended)
    {
        if (Order == 1) return extended.contiguous();
        var shape = extended.Shape().ToArray();
        shape[^1] = Size;
        using var shifts = extended.unfold(-1, Extended, 1).narrow(-2, 0, Rows);  // [..., n, Rows, D̃]: x̃_{(i+d) mod D̃}
        using var tilde = Tilde(extended).unsqueeze(-2);                           // [..., n, 1, D̃]
        using var product = shifts * tilde;                                        // [..., n, Rows, D̃]
        // libtorch usually lays the product out as [..., n, D̃, Rows] (the Rows stride is 1 in both inputs), so
        // feature f = i·Rows + d; reshape is then a view (and copies, still correctly, under another layout).
        using var transposed = product.transpose(-1, -2);                          // [..., n, D̃, Rows]
        return transposed.reshape(shape);                                          // [..., n, F]
    }

    /// <summary>The weights w [F, 1] with f(x·y) = Σ_f w_f φ_f(x̃) φ_f(ỹ).</summary>
    public Tensor Weights(ScalarType dtype, Device device) =>
        tensor(_weights, dtype: dtype, device: device).unsqueeze(-1);

    /// <summary>
    /// The states before (or, <paramref name="reverse"/>, after) each of G chunks, weighted and transposed: for chunk
    /// states delta [..., G, C, F] and a carry [..., C, F], w ⊙ (carry + Σ of the earlier (later) chunks)ᵀ [..., G, F, C];
    /// the carry then moves past the group. One pass over the chunk states on the CPU where the token loops apply
    /// (<see cref="PackedFeatureLoops.RunningStates"/>: the result is the transposed view of a [..., G, C, F] tensor); else the
    /// tensor-op form (cumulative sum, weights, transposed copy), its reference.
    /// With <paramref name="into"/> (delta's shape) the states are written there and its transposed view returned.
    /// </summary>
    public Tensor RunningStates(Tensor delta, Tensor carry, bool reverse, Tensor? into = null) => Plan.RunningStates(this, delta, carry, reverse, into);

    /// <summary>
    /// The weighted states before (or, <paramref name="reverse"/>, after) each of G chunks straight from the chunks' extended inputs
    /// [..., G, c, 2D̃] and u [..., G, c, C]: <see cref="RunningStates"/> of <see cref="StateTransposed"/>, in one pass where the CPU
    /// kernels take it (the chunk states then never leave the cache), [..., G, F, C]; the carry moves past the group.
    /// </summary>
    /// <remarks>With <paramref name="appendOne"/>, u is given without its last column of ones ([v, 1] as v).</remarks>
    public Tensor ChunkStates(Tensor extended, Tensor u, Tensor carry, bool reverse, Tensor? into = null, bool appendOne = false) =>
        Plan.ChunkStates(this, extended, u, carry, reverse, into, appendOne);

    /// <summary>The tensor-op form of <see cref="RunningStates"/>.</summary>
    internal Tensor RunningStatesByTensorOps(Tensor delta, Tensor carry, bool reverse)
    {
        using var scope = NewDisposeScope();
        using var total = delta.sum(-3);                                                       // [..., C, F]
        var exclusive = reverse ? total.unsqueeze(-3) - delta.cumsum(-3) : delta.cumsum(-3).sub_(delta);
        var states = exclusive.AddInPlace(carry.unsqueeze(-3));
        carry.AddInPlace(total);
        return Weigh(states.transpose(-1, -2)).MoveToOuterDisposeScope();                       // [..., G, F, C]
    }

    /// <summary>w ⊙ S for a state S [..., F, C]: the query side of f, applied to a small matrix (each slice's w times s^l where <see cref="SliceScale"/> is set).</summary>
    public Tensor Weigh(Tensor state)
    {
        if (SliceScale is { } scale)
        {
            // Per slice w_f·s^l, in doubles here: a handful of tensor ops on [B, H, F] cost more than this loop at F = 561.
            using var scales = scale.to(ScalarType.Float64).contiguous();
            var s = scales.data<double>().ToArray();
            var perSlice = new double[s.Length * Size];
            for (int slice = 0; slice < s.Length; slice++)
                for (int f = 0; f < Size; f++)
                    perSlice[slice * Size + f] = _weights[f] * Math.Pow(s[slice], _degrees[f]);
            using var weights = tensor(perSlice, scale.Shape()[..^2].Concat(new[] { Size, 1L }).ToArray(), dtype: state.dtype, device: state.device);
            return state * weights;
        }
        // One weight tensor per plan and dtype: the causal kernels weigh a state in every chunk.
        if (_cachedWeights is null || _cachedWeights.dtype != state.dtype || _cachedWeights.device.ToString() != state.device.ToString())
        {
            _cachedWeights?.Dispose();
            _cachedWeights = Weights(state.dtype, state.device).DetachFromDisposeScope();
        }
        return state * _cachedWeights;
    }

    Tensor? _cachedWeights;

    /// <summary>
    /// ∂/∂x of Σ_c u_c Σ_f φ_f(x̃)·W_fc for a weighted state W = w ⊙ S [..., F, C], per token: [..., n, D] for an
    /// extended chunk [..., n, 2D̃] (as <see cref="Build"/> takes it; the constant coordinate is dropped) and u [..., n, C].
    /// In float32 with AVX-512 the feature gradient dφ = u·Wᵀ comes transposed, up to 12 features × 32 tokens per register tile,
    /// and goes straight into the chain rule (<see cref="TokenColumns.Gradient"/>; dφ is never stored).
    /// Elsewhere dφ [..., n, F] is one GEMM as large as the forward's output product, then the chain rule through
    /// φ_(i,d) = x̃_i·x̃_(i+d) runs as one loop per token or a few elementwise passes (README.md, "Backward").
    /// </summary>
    /// <remarks>
    /// With <paramref name="appendOne"/>, u is given without its last column of ones ([v, 1] as v); with <paramref name="addTo"/>
    /// [..., n, D], the gradient is added to it (in cache where the kernels can), which is returned.
    /// </remarks>
    public Tensor Gradient(Tensor extended, Tensor u, Tensor weightedState, bool appendOne = false, Tensor? addTo = null) =>
        Plan.Gradient(this, extended, u, weightedState, appendOne, addTo);

    /// <summary>
    /// The weighted state W [..., F, C] transposed with its rows reordered d-major (f′ = d·D̃ + i; one small copy) [..., C, F]:
    /// every reduction of the chain rule then runs over whole contiguous rows of D̃ entries, and u·Wᵀ reads unit-stride rows.
    /// </summary>
    internal Tensor DMajorTransposed(Tensor weightedState)
    {
        var batch = weightedState.Shape()[..^2];
        return weightedState.unflatten(weightedState.dim() - 2, new long[] { Extended, Rows }).transpose(-3, -1)
            .reshape(batch.Concat(new[] { weightedState.size(-1), Size }).ToArray());   // [..., C, F]
    }

    /// <summary>
    /// The chain rule of <see cref="Gradient"/> in elementwise torch passes: dx [..., n, D] from the d-major feature
    /// gradient [..., n, F] and the extended chunk (the reference for <see cref="PackedFeatureLoops.ChainRule"/>).
    /// </summary>
    internal Tensor ChainRuleByBroadcast(Tensor featureGradient, Tensor extended)
    {
        using var scope = NewDisposeScope();
        long e = Extended, rows = Rows;
        var packed = featureGradient.unflatten(featureGradient.dim() - 1, new[] { rows, e });   // [..., n, Rows, D̃]: dφ_(i,d)
        var shifts = extended.unfold(-1, e, 1).narrow(-2, 0, rows);                      // [..., n, Rows, D̃]: x̃_(i+d)
        // ∂φ_(i,d)/∂x̃_m has two parts: m = i (the factor x̃_(i+d) remains) and m = i + d (x̃_i remains).
        var asFirst = (packed * shifts).sum(-2);                                         // Σ_d dφ_(m,d)·x̃_(m+d)
        var partnerTerms = packed * Tilde(extended).unsqueeze(-2);                        // dφ_(i,d)·x̃_i
        var asSecond = SkewSum(cat(new[] { partnerTerms, partnerTerms }, -1));            // Σ_d dφ_(m−d,d)·x̃_(m−d)
        return asFirst.AddInPlace(asSecond).narrow(-1, 0, D).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Σ_d T[d, (m − d) mod D̃] for each m, from T doubled along i (T2 [..., n, Rows, 2D̃], contiguous): the entry
    /// T2[d, m + D̃ − d] lies at D̃ + d·(2D̃ − 1) + m, so the terms form one strided view, no gather.
    /// </summary>
    Tensor SkewSum(Tensor doubled)
    {
        long e = Extended;
        var size = doubled.Shape().ToArray();
        size[^1] = e;
        var strides = doubled.Strides().ToArray();
        strides[^2] = 2 * e - 1;
        return doubled.as_strided(size, strides, doubled.storage_offset() + e).sum(-2);  // [..., n, D̃]
    }
}
