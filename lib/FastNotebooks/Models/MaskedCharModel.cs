using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FastNotebooks.Models;

/// <summary>
/// Bidirectional (encoder-only) character model for masked language modelling: token embeddings with one extra
/// [MASK] symbol, learned positions, pre-LN blocks without a causal mask, a linear head over the vocabulary.
/// ids [B, N] (values in 0..vocabulary, where <see cref="MaskId"/> = vocabulary is [MASK]) → logits [B, N, vocabulary].
/// </summary>
public sealed class MaskedCharModel : nn.Module<Tensor, Tensor>
{
    readonly Embedding tokens;
    readonly Parameter positions;
    public readonly ModuleList<TransformerBlock> blocks = new();
    readonly LayerNorm norm;
    readonly Linear head;

    public MaskedCharModel(TransformerConfig config, int vocabulary) : base(nameof(MaskedCharModel))
    {
        config.Validate();
        if (vocabulary < 2) throw new ArgumentException($"vocabulary must have at least 2 symbols; got {vocabulary}.", nameof(vocabulary));
        Config = config;
        Vocabulary = vocabulary;
        tokens = nn.Embedding(vocabulary + 1, config.Dim);                    // + [MASK]
        // Positions at the scale of the token embeddings (N(0, 1)): a masked position carries no token, so everything it
        // predicts must come from attending to its neighbours by position; at 1/50 of the tokens' scale (a common choice
        // for causal models, which see their own token) the quick run stayed on the unigram plateau.
        positions = nn.Parameter(randn(1, config.MaxTokens, config.Dim));
        for (int i = 0; i < config.Blocks; i++) blocks.Add(new TransformerBlock(config, causal: false));
        norm = nn.LayerNorm(config.Dim);
        head = nn.Linear(config.Dim, vocabulary);
        RegisterComponents();
        XavierInit.Apply(this);
    }

    public TransformerConfig Config { get; }

    public int Vocabulary { get; }

    /// <summary>The id of the [MASK] symbol (one past the corpus vocabulary).</summary>
    public long MaskId => Vocabulary;

    public override Tensor forward(Tensor ids)
    {
        if (ids.size(1) > Config.MaxTokens)
            throw new ArgumentException($"sequence of {ids.size(1)} tokens exceeds MaxTokens {Config.MaxTokens}.", nameof(ids));
        using var scope = NewDisposeScope();
        var x = tokens.forward(ids) + positions.narrow(1, 0, ids.size(1));   // [B, N, d]
        foreach (var block in blocks) x = block.forward(x);
        return TiledLinear.Apply(head, norm.forward(x)).MoveToOuterDisposeScope();      // [B, N, vocabulary]
    }
}
