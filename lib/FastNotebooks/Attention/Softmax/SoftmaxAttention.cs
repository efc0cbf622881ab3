using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Softmax;

/// <summary>
/// Softmax attention through libtorch's scaled_dot_product_attention: softmax(q·kᵀ/√D + mask)·v, O(N²) time.
/// Causal masks follow the KV-offset convention of the whole library (query i sees keys j ≤ Nk − Nq + i),
/// which for Nq ≠ Nk needs an explicit mask (SDPA's own causal flag aligns to the top-left corner).
/// </summary>
public sealed class SoftmaxAttention : AttentionMechanism
{
    readonly double _dropout;

    public SoftmaxAttention(bool causal = false, double dropout = 0) : base(nameof(SoftmaxAttention), causal) => _dropout = dropout;

    public override Tensor forward(Tensor q, Tensor k, Tensor v) => Attention(q, k, v, Causal, training ? _dropout : 0);

    /// <summary>Functional form; <paramref name="dropout"/> applies to the attention probabilities.</summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, bool causal = false, double dropout = 0)
    {
        AttentionInputs.Validate(q, k, v, causal);
        long nq = q.size(2), nk = k.size(2);
        if (!causal || nq == nk)
            return nn.functional.scaled_dot_product_attention(q, k, v, p: dropout, is_casual: causal);
        using var visible = CausalMask(nq, nk, q.device);
        return nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: visible, p: dropout);
    }

    /// <summary>[Nq, Nk] booleans, true where query i may see key j (j ≤ Nk − Nq + i).</summary>
    public static Tensor CausalMask(long nq, long nk, Device device) =>
        ones(nq, nk, dtype: ScalarType.Bool, device: device).tril(nk - nq);
}
