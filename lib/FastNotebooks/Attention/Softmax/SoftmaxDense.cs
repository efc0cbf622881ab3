using static TorchSharp.torch;

namespace FastNotebooks.Attention.Softmax;

/// <summary>The reference for <see cref="SoftmaxAttention"/>: the N×N probabilities built in plain ops.</summary>
public sealed class SoftmaxDense : AttentionMechanism
{
    readonly double _dropout;

    public SoftmaxDense(bool causal = false, double dropout = 0) : base(nameof(SoftmaxDense), causal) => _dropout = dropout;

    public override Tensor forward(Tensor q, Tensor k, Tensor v)
    {
        using var scores = Scores(q, k, Causal);
        using var dropped = nn.functional.dropout(scores, training ? _dropout : 0, training);
        return dropped.matmul(v);
    }

    /// <summary>softmax(q·kᵀ/√D) with masked entries at −∞: [B, H, Nq, Nk].</summary>
    public static Tensor Scores(Tensor q, Tensor k, bool causal)
    {
        AttentionInputs.Validate(q, k, k, causal);
        using var scope = NewDisposeScope();
        var logits = q.matmul(k.transpose(-1, -2)) / Math.Sqrt(q.size(3));
        if (causal)
            logits = logits.masked_fill(Visible(q.size(2), k.size(2), q.device).logical_not(), double.NegativeInfinity);
        return logits.softmax(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// [Nq, Nk] booleans, true where query i may see key j: j ≤ Nk − Nq + i, compared index by index. The reference
    /// builds its own mask, so that a wrong mask in the fast path cannot hide in both.
    /// </summary>
    static Tensor Visible(long nq, long nk, Device device)
    {
        var query = arange(nq, dtype: ScalarType.Int64, device: device).unsqueeze(1);   // [Nq, 1]
        var key = arange(nk, dtype: ScalarType.Int64, device: device).unsqueeze(0);     // [1, Nk]
        return key.le(query + (nk - nq));                                               // [Nq, Nk]
    }

    public static Tensor Attention(Tensor q, Tensor k, Tensor v, bool causal = false)
    {
        AttentionInputs.Validate(q, k, v, causal);
        using var scores = Scores(q, k, causal);
        return scores.matmul(v);
    }
}
