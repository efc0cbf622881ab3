using static TorchSharp.torch;

namespace FastNotebooks.Attention.Linear;

/// <summary>
/// Linear attention with φ(x) = elu(x) + 1 (Katharopoulos et al., 2020), the classic baseline:
/// o_i = φ(q_i)·Σ_j φ(k_j) v_jᵀ / φ(q_i)·Σ_j φ(k_j), O(N·D·Dv). φ > 0, so the denominator is positive.
/// Causal uses the library's KV-offset convention and the chunked form of <see cref="FeatureMapAttention"/>.
/// </summary>
public sealed class LinearAttention : AttentionMechanism
{
    public LinearAttention(bool causal = false) : base(nameof(LinearAttention), causal) { }

    public override Tensor forward(Tensor q, Tensor k, Tensor v) => Attention(q, k, v, Causal);

    /// <summary>Tokens per chunk of the causal form.</summary>
    public const int ChunkSize = 64;

    public static Tensor Attention(Tensor q, Tensor k, Tensor v, bool causal = false)
    {
        AttentionInputs.Validate(q, k, v, causal);
        using var phiQ = FeatureMap(q);
        using var phiK = FeatureMap(k);
        return FeatureMapAttention.Forward(phiQ, phiK, v, causal, ChunkSize);
    }

    /// <summary>φ(x) = elu(x) + 1, elementwise.</summary>
    public static Tensor FeatureMap(Tensor x)
    {
        using var elu = nn.functional.elu(x, alpha: 1.0);
        return elu + 1;
    }
}

/// <summary>The reference: the N×N matrix φ(q)φ(k)ᵀ, masked, normalized by its row sums.</summary>
public sealed class LinearDense : AttentionMechanism
{
    public LinearDense(bool causal = false) : base(nameof(LinearDense), causal) { }

    public override Tensor forward(Tensor q, Tensor k, Tensor v) => Attention(q, k, v, Causal);

    public static Tensor Attention(Tensor q, Tensor k, Tensor v, bool causal = false)
    {
        AttentionInputs.Validate(q, k, v, causal);
        using var scope = NewDisposeScope();
        var kernel = LinearAttention.FeatureMap(q).matmul(LinearAttention.FeatureMap(k).transpose(-1, -2)); // [B, H, Nq, Nk]
        if (causal)
            kernel = kernel.masked_fill(Softmax.SoftmaxAttention.CausalMask(q.size(2), k.size(2), q.device).logical_not(), 0);
        return (kernel / kernel.sum(-1, keepdim: true)).matmul(v).MoveToOuterDisposeScope();
    }
}
