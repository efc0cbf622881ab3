using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FastNotebooks.Models;

/// <summary>Pre-LayerNorm block: x + attention(LN(x)), then x + MLP(LN(x)) with a GELU MLP.</summary>
public sealed class TransformerBlock : nn.Module<Tensor, Tensor>
{
    readonly LayerNorm attentionNorm;
    readonly LayerNorm mlpNorm;
    public readonly SelfAttention attention;
    readonly Linear up;
    readonly Linear down;
    readonly Dropout dropout;

    public TransformerBlock(TransformerConfig config, bool causal) : base(nameof(TransformerBlock))
    {
        attentionNorm = nn.LayerNorm(config.Dim);
        mlpNorm = nn.LayerNorm(config.Dim);
        attention = new SelfAttention(config, causal);
        up = nn.Linear(config.Dim, config.MlpDim);
        down = nn.Linear(config.MlpDim, config.Dim);
        dropout = nn.Dropout(config.Dropout);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Forward(x, attention.forward);

    /// <summary>The block with <paramref name="attend"/> in place of the attention layer (decoding passes its cached form).</summary>
    internal Tensor Forward(Tensor x, Func<Tensor, Tensor> attend)
    {
        using var scope = NewDisposeScope();
        x = x + dropout.forward(attend(attentionNorm.forward(x)));
        x = x + dropout.forward(TiledLinear.Apply(down, nn.functional.gelu(TiledLinear.Apply(up, mlpNorm.forward(x)))));
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>The input the attention layer sees for block input x (for attention maps).</summary>
    public Tensor AttentionInput(Tensor x) => attentionNorm.forward(x);
}

/// <summary>Xavier-uniform weights and zero biases for every Linear, as in the paper's models.</summary>
public static class XavierInit
{
    public static void Apply(nn.Module module)
    {
        using var noGrad = no_grad();
        foreach (var (_, child) in module.named_modules())
            if (child is Linear linear)
            {
                nn.init.xavier_uniform_(linear.weight);
                if (linear.bias is { } bias) nn.init.zeros_(bias);
            }
    }
}
