using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FastNotebooks.Models;

/// <summary>
/// The Long Range Arena classifier: token embedding (id 0 is padding), learned positions, bidirectional pre-LN blocks,
/// mean pooling over the non-padding tokens, and a linear head. With <c>pairs</c> it is LRA's retrieval model: both
/// documents go through the same encoder and the head sees [x₁, x₂, x₁·x₂, x₁ − x₂].
/// ids [B, N] (or two of them) → logits [B, classes].
/// </summary>
public sealed class SequenceClassifier : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly Embedding tokens;
    readonly Parameter positions;
    readonly ModuleList<TransformerBlock> blocks = new();
    readonly LayerNorm norm;
    readonly Linear head;

    public SequenceClassifier(TransformerConfig config, int vocabulary, int classes, bool pairs = false) : base(nameof(SequenceClassifier))
    {
        config.Validate();
        Config = config;
        tokens = nn.Embedding(vocabulary, config.Dim, padding_idx: 0);
        positions = nn.Parameter(randn(1, config.MaxTokens, config.Dim) * 0.02);
        for (int i = 0; i < config.Blocks; i++) blocks.Add(new TransformerBlock(config, causal: false));
        norm = nn.LayerNorm(config.Dim);
        head = nn.Linear(pairs ? 4 * config.Dim : config.Dim, classes);
        RegisterComponents();
        XavierInit.Apply(this);
    }

    public TransformerConfig Config { get; }

    public override Tensor forward(Tensor ids, Tensor? second = null)
    {
        using var scope = NewDisposeScope();
        var x = Encode(ids);
        if (second is not null)
        {
            var y = Encode(second);
            x = cat(new[] { x, y, x * y, x - y }, -1);
        }
        return TiledLinear.Apply(head, x).MoveToOuterDisposeScope();
    }

    /// <summary>Mean of the final token states over non-padding positions: [B, d].</summary>
    public Tensor Encode(Tensor ids)
    {
        if (ids.size(1) > Config.MaxTokens)
            throw new ArgumentException($"sequence of {ids.size(1)} tokens exceeds MaxTokens {Config.MaxTokens}.", nameof(ids));
        using var scope = NewDisposeScope();
        var x = tokens.forward(ids) + positions.narrow(1, 0, ids.size(1));
        foreach (var block in blocks) x = block.forward(x);
        var mask = ids.ne(0).unsqueeze(-1).to(x.dtype);                                       // [B, N, 1]
        return ((norm.forward(x) * mask).sum(1) / mask.sum(1).clamp_min(1)).MoveToOuterDisposeScope();
    }
}
