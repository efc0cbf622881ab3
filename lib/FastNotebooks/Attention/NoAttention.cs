using static TorchSharp.torch;

namespace FastNotebooks.Attention;

/// <summary>
/// The control for training experiments: attention removed. The output is zero, so a pre-LN block's attention branch
/// adds nothing and each position sees only its own token and position — what a model learns without attention
/// (about a bigram model for a character LM). An experiment's claim about attention means something only where the
/// real mechanisms beat this control.
/// </summary>
public sealed class NoAttention : AttentionMechanism
{
    public NoAttention(bool causal = false) : base(nameof(NoAttention), causal) { }

    /// <returns>Zeros [B, H, Nq, Dv].</returns>
    public override Tensor forward(Tensor q, Tensor k, Tensor v)
    {
        AttentionInputs.Validate(q, k, v, Causal);
        return zeros(q.size(0), q.size(1), q.size(2), v.size(3), dtype: v.dtype, device: v.device);
    }
}
