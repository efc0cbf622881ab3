using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FastNotebooks.Models;

/// <summary>
/// Causal character-level language model: token and learned position embeddings, causal pre-LN blocks, a linear
/// head. ids [B, N] → logits [B, N, vocabulary]. Generation (prefill, one token at a time with per-layer state, sampling and
/// greedy decoding) is in Decoding/CharLanguageModel.Decoding.cs.
/// </summary>
public sealed partial class CharLanguageModel : nn.Module<Tensor, Tensor>
{
    readonly Embedding tokens;
    readonly Parameter positions;
    public readonly ModuleList<TransformerBlock> blocks = new();
    readonly LayerNorm norm;
    readonly Linear head;

    public CharLanguageModel(TransformerConfig config, int vocabulary) : base(nameof(CharLanguageModel))
    {
        config.Validate();
        if (vocabulary < 2) throw new ArgumentException($"vocabulary must have at least 2 symbols; got {vocabulary}.", nameof(vocabulary));
        Config = config;
        tokens = nn.Embedding(vocabulary, config.Dim);
        positions = nn.Parameter(randn(1, config.MaxTokens, config.Dim) * 0.02);
        for (int i = 0; i < config.Blocks; i++) blocks.Add(new TransformerBlock(config, causal: true));
        norm = nn.LayerNorm(config.Dim);
        head = nn.Linear(config.Dim, vocabulary);
        RegisterComponents();
        XavierInit.Apply(this);
    }

    public TransformerConfig Config { get; }

    public override Tensor forward(Tensor ids)
    {
        if (ids.size(1) > Config.MaxTokens)
            throw new ArgumentException($"sequence of {ids.size(1)} tokens exceeds MaxTokens {Config.MaxTokens}.", nameof(ids));
        using var scope = NewDisposeScope();
        var x = Embed(ids);
        foreach (var block in blocks) x = block.forward(x);
        return TiledLinear.Apply(head, norm.forward(x)).MoveToOuterDisposeScope();
    }

    Tensor Embed(Tensor ids) => tokens.forward(ids) + positions.narrow(1, 0, ids.size(1));

    /// <summary>Attention matrices [B, H, N, N] of block <paramref name="block"/> for these ids.</summary>
    public Tensor AttentionMap(Tensor ids, int block)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = Embed(ids);
        for (int i = 0; i < block; i++) x = blocks[i].forward(x);
        return blocks[block].attention.AttentionMap(blocks[block].AttentionInput(x)).MoveToOuterDisposeScope();
    }
}
