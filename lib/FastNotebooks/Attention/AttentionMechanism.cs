using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Attention;

/// <summary>
/// One attention mechanism behind one interface: forward(q [B, H, Nq, D], k [B, H, Nk, D], v [B, H, Nk, Dv])
/// → o [B, H, Nq, Dv]. Models hold one of these and never know which; <see cref="AttentionRegistry"/> makes
/// them by name. Dropout-like regularizers follow the module's training flag.
/// </summary>
public abstract class AttentionMechanism : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    protected AttentionMechanism(string name, bool causal) : base(name) => Causal = causal;

    /// <summary>Query i sees keys j ≤ Nk − Nq + i.</summary>
    public bool Causal { get; }
}
