using FastNotebooks.Attention.Fastmax.Reference;
using FastNotebooks.Attention.Fastmax;
using static TorchSharp.torch;

namespace FastNotebooks.Models.Decoding;

/// <summary>
/// Causal Fastmax as a recurrence (README.md beside the Fastmax kernels, "Causal"). With f(q̂·k̂) = φ_q(q̂)·φ_k(k̂), the output
/// at token t is [numerator, g] = φ_q(q̂_t)·S_t with S_t = Σ_{j≤t} φ_k(k̂_j)ᵀ [v_j, 1]: a state of F × (Dv + 1) numbers per
/// head (F = 1 + D + D(D+1)/2 for p = 2) and O(F·Dv) work per token, whatever the context.
/// The causal normalizations divide token n by the running maximum of a per-token measure over tokens 0..n, so k̂_j is
/// fixed once token j is seen and the running maxima of q and k (one number each per head) are all the normalization
/// carries: MeanCentered and ZeroCentered scale the (centred) token by max(NormFloor, max_{m≤n} ‖x̃_m‖), SquaredNorm by
/// max(SquaredNormFloor, max_{m≤n} ‖x_m‖²), None not at all. Every normalization is therefore exact here; the temperature
/// divides q̂ as in the kernel.
/// </summary>
public sealed class FastmaxRecurrentState : IAttentionCache
{
    /// <summary>Tokens of the prompt folded into the state per product in <see cref="Prefill"/> (bounds the feature rows held at once).</summary>
    const int PrefillChunk = 1024;

    readonly FastmaxOptions options;
    readonly double[] coefficients;
    readonly Tensor state;       // [B, H, F, Dv + 1]: Σ_j φ_k(k̂_j)ᵀ [v_j, 1]
    readonly Tensor queryScale;  // [B, H, 1, 1]: running maximum of the queries' measure (unused for None)
    readonly Tensor keyScale;    // [B, H, 1, 1]: the same for the keys

    FastmaxRecurrentState(FastmaxOptions options, Tensor state, Tensor queryScale, Tensor keyScale, long tokens)
    {
        this.options = options;
        coefficients = options.ResolvedCoefficients();
        this.state = state;
        this.queryScale = queryScale;
        this.keyScale = keyScale;
        Tokens = tokens;
    }

    public long Tokens { get; private set; }

    /// <summary>
    /// Whether steps on CPU float tensors (p ≤ 2) run as one written-out loop per head (<see cref="FastmaxRecurrentStep"/>; the
    /// default) or as the tensor operations below, which are its reference. For tests and the bench.
    /// </summary>
    public bool UseLoop { get; set; } = true;

    /// <summary>Bytes of the state: F·(Dv + 1) + 2 numbers per head.</summary>
    public long Bytes => (state.numel() + queryScale.numel() + keyScale.numel()) * state.ElementSize;

    /// <summary>
    /// The state after a prompt with queries q, keys k [B, H, N, D] and values v [B, H, N, Dv] (the layer's own projections;
    /// the prompt's outputs come from the layer's kernel). Refuses options without a causal mask.
    /// </summary>
    public static FastmaxRecurrentState Prefill(Tensor q, Tensor k, Tensor v, FastmaxOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!options.Causal) throw new ArgumentException("a recurrent state needs causal Fastmax (options.Causal is false).", nameof(options));
        Attention.AttentionInputs.Validate(q, k, v, causal: true);
        if (q.size(2) != k.size(2)) throw new ArgumentException($"prefill takes self-attention (Nq = Nk); got Nq {q.size(2)}, Nk {k.size(2)}.", nameof(q));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long b = k.size(0), h = k.size(1), n = k.size(2), d = k.size(3), dv = v.size(3);
        long features = TaylorFeatures.Size(d, options.Order);
        var queryScale = zeros(new[] { b, h, 1, 1 }, dtype: q.dtype, device: q.device);
        var keyScale = zeros_like(queryScale);
        var state = zeros(new[] { b, h, features, dv + 1 }, dtype: v.dtype, device: v.device);
        Normalize(q, queryScale, options.Normalization);                                        // only the running maximum is kept
        for (long start = 0; start < n; start += PrefillChunk)
        {
            using var chunk = NewDisposeScope();
            long length = Math.Min(PrefillChunk, n - start);
            var kHat = Normalize(k.narrow(2, start, length), keyScale, options.Normalization);  // [B, H, n, D]
            var phi = TaylorFeatures.Key(kHat, options.Order);                                  // [B, H, n, F]
            state.add_(phi.transpose(-1, -2).matmul(TaylorFeatures.AppendOnes(v.narrow(2, start, length)))); // [B, H, F, Dv + 1]
        }
        return new FastmaxRecurrentState(options, state.DetachFromDisposeScope(), queryScale.DetachFromDisposeScope(), keyScale.DetachFromDisposeScope(), n);
    }

    public Tensor Step(Tensor q, Tensor k, Tensor v)
    {
        if (q.size(2) != 1 || k.size(2) != 1 || v.size(2) != 1)
            throw new ArgumentException($"a step takes one token; got q, k, v of {q.size(2)}, {k.size(2)}, {v.size(2)} tokens.", nameof(q));
        if (q.dtype != state.dtype) throw new ArgumentException($"q has dtype {q.dtype}; the state holds {state.dtype}.", nameof(q));
        if (UseLoop && FastmaxRecurrentStep.Applies(options.Order, state, queryScale, keyScale, q, k, v))
        {
            using var contiguous = NewDisposeScope();
            var o = empty(new[] { q.size(0), q.size(1), 1, v.size(3) }, dtype: q.dtype);
            FastmaxRecurrentStep.Run(q.contiguous(), k.contiguous(), v.contiguous(), state, queryScale, keyScale, o, options.Normalization, coefficients, options.Temperature);
            Tokens++;
            return o.MoveToOuterDisposeScope();
        }
        using var scope = NewDisposeScope();
        var kHat = Normalize(k, keyScale, options.Normalization);                                  // [B, H, 1, D]
        state.add_(TaylorFeatures.Key(kHat, options.Order).transpose(-1, -2).matmul(TaylorFeatures.AppendOnes(v))); // += φ_k(k̂)ᵀ [v, 1]
        var qHat = Normalize(q, queryScale, options.Normalization);
        if (options.Temperature != 1.0) qHat = qHat / options.Temperature;
        var output = TaylorFeatures.Query(qHat, coefficients).matmul(state);                     // [B, H, 1, Dv + 1]: [numerator, g]
        long dv = v.size(3);
        Tokens++;
        return (output.narrow(-1, 0, dv) / output.narrow(-1, dv, 1)).MoveToOuterDisposeScope();  // [B, H, 1, Dv]
    }

    /// <summary>
    /// x [B, H, n, D] normalized with the causal running maximum continued from <paramref name="scale"/> [B, H, 1, 1],
    /// which is updated in place to the maximum after the last of these tokens.
    /// </summary>
    static Tensor Normalize(Tensor x, Tensor scale, FastmaxNormalization normalization)
    {
        if (normalization == FastmaxNormalization.None) return x.alias();
        using var scope = NewDisposeScope();
        var centered = normalization == FastmaxNormalization.MeanCentered ? x - x.mean(new long[] { -1 }, keepdim: true) : x;
        var measure = linalg.vector_norm(centered, dims: new long[] { -1 }, keepdim: true);  // [B, H, n, 1]
        if (normalization == FastmaxNormalization.SquaredNorm) measure = measure.square();
        var running = maximum(measure.cummax(2).values, scale);                              // max over tokens 0..n, earlier steps included
        scale.copy_(running.narrow(2, running.size(2) - 1, 1));
        double floor = normalization == FastmaxNormalization.SquaredNorm ? FastmaxNormalizer.SquaredNormFloor : FastmaxNormalizer.NormFloor;
        return (centered / running.clamp_min(floor)).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        state.Dispose();
        queryScale.Dispose();
        keyScale.Dispose();
    }
}
