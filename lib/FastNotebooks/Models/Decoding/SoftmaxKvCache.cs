using FastNotebooks.Attention.Softmax;
using static TorchSharp.torch;

namespace FastNotebooks.Models.Decoding;

/// <summary>
/// Softmax decoding with a KV cache: keys and values of every token so far, [B, H, capacity, D] allocated once; a step
/// writes the new token's k, v in place and attends its query to all cached keys, O(t·D) work and 2·t·D numbers per head
/// at context t. The fair baseline for <see cref="FastmaxRecurrentState"/>.
/// </summary>
public sealed class SoftmaxKvCache : IAttentionCache
{
    readonly Tensor keys;   // [B, H, capacity, D]
    readonly Tensor values; // [B, H, capacity, Dv]

    SoftmaxKvCache(Tensor keys, Tensor values, long tokens)
    {
        this.keys = keys;
        this.values = values;
        Tokens = tokens;
    }

    public long Tokens { get; private set; }

    /// <summary>Bytes of the keys and values held so far (the allocation is for the capacity).</summary>
    public long Bytes => Tokens * (keys.size(0) * keys.size(1)) * (keys.size(3) + values.size(3)) * keys.ElementSize;

    /// <summary>Longest sequence the cache holds.</summary>
    public long Capacity => keys.size(2);

    /// <summary>The cache after a prompt with keys k [B, H, N, D] and values v [B, H, N, Dv].</summary>
    public static SoftmaxKvCache Prefill(Tensor k, Tensor v, long capacity)
    {
        long n = k.size(2);
        if (capacity < n) throw new ArgumentException($"capacity {capacity} is shorter than the prompt's {n} tokens.", nameof(capacity));
        var keys = zeros(new[] { k.size(0), k.size(1), capacity, k.size(3) }, dtype: k.dtype, device: k.device).DetachFromDisposeScope();
        var values = zeros(new[] { v.size(0), v.size(1), capacity, v.size(3) }, dtype: v.dtype, device: v.device).DetachFromDisposeScope();
        using (no_grad())
        {
            keys.narrow(2, 0, n).copy_(k);
            values.narrow(2, 0, n).copy_(v);
        }
        return new SoftmaxKvCache(keys, values, n);
    }

    public Tensor Step(Tensor q, Tensor k, Tensor v)
    {
        if (Tokens >= Capacity) throw new InvalidOperationException($"the KV cache is full ({Capacity} tokens).");
        using var scope = NewDisposeScope();
        keys.narrow(2, Tokens, 1).copy_(k);
        values.narrow(2, Tokens, 1).copy_(v);
        Tokens++;
        // One query sees every cached key: no mask.
        return SoftmaxAttention.Attention(q, keys.narrow(2, 0, Tokens), values.narrow(2, 0, Tokens)).MoveToOuterDisposeScope(); // [B, H, 1, Dv]
    }

    public void Dispose()
    {
        keys.Dispose();
        values.Dispose();
    }
}
