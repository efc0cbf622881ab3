using FastNotebooks.Attention.Fastmax.Reference;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax;

/// <summary>Fastmax as a module (see <see cref="FastmaxFunctional.Attention"/>); regularizers act in training mode only.</summary>
public sealed class FastmaxAttention : AttentionMechanism
{
    public FastmaxAttention(FastmaxOptions options) : base(nameof(FastmaxAttention), options.Causal)
    {
        options.Validate();
        Options = options;
    }

    public FastmaxOptions Options { get; }

    public override Tensor forward(Tensor q, Tensor k, Tensor v) => FastmaxFunctional.Attention(q, k, v, Options, training);
}

/// <summary>The dense reference as a module, so models can run on the oracle (no dropout).</summary>
public sealed class FastmaxDenseAttention : AttentionMechanism
{
    public FastmaxDenseAttention(FastmaxOptions options) : base(nameof(FastmaxDenseAttention), options.Causal)
    {
        options.Validate();
        Options = options;
    }

    public FastmaxOptions Options { get; }

    public override Tensor forward(Tensor q, Tensor k, Tensor v) => FastmaxDense.Attention(q, k, v, Options);
}
