using FastNotebooks.Attention;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Softmax;
using static TorchSharp.torch;

namespace FastNotebooks.Models.Decoding;

/// <summary>
/// What one causal attention layer keeps between decoding steps, so the next token costs one query instead of a forward
/// over the whole window. Made by <see cref="AttentionCache.Prefill"/> from the prompt's q, k, v; each step takes the new
/// token's q, k, v [B, H, 1, D] and returns its output [B, H, 1, Dv], exactly what the layer's causal forward gives at that
/// position (up to rounding).
/// </summary>
public interface IAttentionCache : IDisposable
{
    /// <summary>Tokens seen so far (prompt and steps).</summary>
    long Tokens { get; }

    /// <summary>Bytes of state held for all B sequences together.</summary>
    long Bytes { get; }

    /// <summary>Adds the token with keys k and values v [B, H, 1, D] and returns the output [B, H, 1, Dv] of its query q.</summary>
    Tensor Step(Tensor q, Tensor k, Tensor v);
}

/// <summary>Picks the cache for a mechanism: the recurrent Fastmax state or a softmax KV cache.</summary>
public static class AttentionCache
{
    /// <summary>True when <paramref name="mechanism"/> has a decoding cache (causal Fastmax or softmax, fast or dense).</summary>
    public static bool Supports(AttentionMechanism mechanism) =>
        mechanism.Causal && mechanism is FastmaxAttention or FastmaxDenseAttention or SoftmaxAttention or SoftmaxDense;

    /// <summary>
    /// The cache after the prompt whose q, k [B, H, N, D] and v [B, H, N, Dv] the layer computed.
    /// <paramref name="capacity"/> is the longest sequence the cache must hold (the softmax cache allocates it).
    /// Dropout and output noise are training-mode regularizers; the cache computes the evaluation-mode layer.
    /// </summary>
    public static IAttentionCache Prefill(AttentionMechanism mechanism, Tensor q, Tensor k, Tensor v, long capacity) => mechanism switch
    {
        _ when !mechanism.Causal => throw new ArgumentException($"decoding needs causal attention; {mechanism.GetName()} is not causal.", nameof(mechanism)),
        FastmaxAttention fastmax => FastmaxRecurrentState.Prefill(q, k, v, fastmax.Options),
        FastmaxDenseAttention dense => FastmaxRecurrentState.Prefill(q, k, v, dense.Options),
        SoftmaxAttention or SoftmaxDense => SoftmaxKvCache.Prefill(k, v, capacity),
        _ => throw new NotSupportedException($"no decoding cache for {mechanism.GetName()}: decoding with state needs causal fastmax or softmax attention."),
    };
}
