using FastNotebooks.Attention;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Linear;
using FastNotebooks.Attention.Softmax;
using TorchSharp;
using TorchSharp.Modules;
using FastNotebooks.Attention.Fastmax.Reference;
using static TorchSharp.torch;

namespace FastNotebooks.Models;

/// <summary>
/// Multi-head self-attention around a pluggable mechanism: x [B, N, d] → q, k, v [B, H, N, d/H] → mechanism → [B, N, d]
/// → output projection.
/// </summary>
public sealed class SelfAttention : nn.Module<Tensor, Tensor>
{
    readonly Linear qkv;
    readonly Linear output;
    readonly AttentionMechanism mechanism;
    readonly TransformerConfig _config;
    readonly bool _causal;

    public SelfAttention(TransformerConfig config, bool causal) : base(nameof(SelfAttention))
    {
        _config = config;
        _causal = causal;
        qkv = nn.Linear(config.Dim, 3 * config.Dim);
        output = nn.Linear(config.Dim, config.Dim);
        mechanism = AttentionRegistry.Create(config.Attention, causal, config.AttentionDropout, config.HeadDim, config.MaxTokens, config.FastmaxDropoutKind);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Forward(x, mechanism.forward);

    /// <summary>The mechanism this layer runs on its heads.</summary>
    public AttentionMechanism Mechanism => mechanism;

    /// <summary>The layer with <paramref name="attend"/> in place of the mechanism (decoding passes a cache's step).</summary>
    internal Tensor Forward(Tensor x, Func<Tensor, Tensor, Tensor, Tensor> attend)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Heads(x);
        var o = attend(q, k, v);                                                   // [B, H, N, d/H]
        return TiledLinear.Apply(output, o.transpose(1, 2).reshape(x.Shape())).MoveToOuterDisposeScope(); // [B, N, d]
    }

    /// <summary>
    /// The attention matrix [B, H, N, N] this layer applies to x, from the mechanism's dense reference
    /// (softmax and Fastmax variants; linear attention through its dense form). For attention maps.
    /// </summary>
    public Tensor AttentionMap(Tensor x)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (q, k, _) = Heads(x);
        Tensor map = _config.Attention switch
        {
            _ when mechanism is LearnedScaleFastmax scaled => scaled.Scores(q, k),
            var name when name.StartsWith("fastmax") => FastmaxDense.Scores(q, k, AttentionRegistry.FastmaxOptionsFor(name.Replace("-dense", ""), _causal)),
            var name when name.StartsWith("softmax") => SoftmaxDense.Scores(q, k, _causal),
            var name when name.StartsWith("linear") => LinearScores(q, k),
            "none" => zeros(q.size(0), q.size(1), q.size(2), k.size(2), dtype: q.dtype, device: q.device),   // the control attends to nothing
            var name => throw new NotSupportedException($"no dense attention map for '{name}'."),
        };
        return map.MoveToOuterDisposeScope();
    }

    Tensor LinearScores(Tensor q, Tensor k)
    {
        var kernel = LinearAttention.FeatureMap(q).matmul(LinearAttention.FeatureMap(k).transpose(-1, -2));
        if (_causal) kernel = kernel.tril();
        return kernel / kernel.sum(-1, keepdim: true);
    }

    (Tensor Q, Tensor K, Tensor V) Heads(Tensor x)
    {
        long b = x.size(0), n = x.size(1);
        // unbind, not parts[0], parts[1], parts[2]: its backward stacks the three gradients once, where each index's backward
        // writes its gradient into a zeroed copy of the whole [3, B, H, N, d/H] and autograd adds the three (PERF.md, "the model step").
        var parts = TiledLinear.Apply(qkv, x).view(b, n, 3, _config.Heads, _config.HeadDim).permute(2, 0, 3, 1, 4).unbind(0); // 3 × [B, H, N, d/H]
        return (parts[0], parts[1], parts[2]);
    }
}
