using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FastNotebooks.Models;

/// <summary>
/// The paper's MNIST model: a 4×4 convolutional patch embedding (28×28 → 7×7 = 49 tokens) plus a CLS token, learned
/// positions, pre-LN blocks, and a linear head on the CLS token. images [B, 1, 28, 28] → logits [B, classes].
/// </summary>
public sealed class ImageClassifier : nn.Module<Tensor, Tensor>
{
    public const int Patch = 4;
    readonly Conv2d patches;
    readonly Parameter cls;
    readonly Parameter positions;
    public readonly ModuleList<TransformerBlock> blocks = new();
    readonly LayerNorm norm;
    readonly Linear head;

    public ImageClassifier(TransformerConfig config, int imageSize = 28, int classes = 10) : base(nameof(ImageClassifier))
    {
        config.Validate();
        int tokens = (imageSize / Patch) * (imageSize / Patch) + 1;
        if (config.MaxTokens < tokens)
            throw new ArgumentException($"MaxTokens must be at least {tokens} for {imageSize}×{imageSize} images; got {config.MaxTokens}.", nameof(config));
        Config = config;
        patches = nn.Conv2d(1, config.Dim, Patch, stride: Patch);
        cls = nn.Parameter(zeros(1, 1, config.Dim));
        positions = nn.Parameter(randn(1, tokens, config.Dim) * 0.02);
        for (int i = 0; i < config.Blocks; i++) blocks.Add(new TransformerBlock(config, causal: false));
        norm = nn.LayerNorm(config.Dim);
        head = nn.Linear(config.Dim, classes);
        RegisterComponents();
        XavierInit.Apply(this);
    }

    public TransformerConfig Config { get; }

    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var x = Tokens(images);
        foreach (var block in blocks) x = block.forward(x);
        return TiledLinear.Apply(head, norm.forward(x.select(1, 0))).MoveToOuterDisposeScope();
    }

    /// <summary>Patch tokens with CLS and positions: [B, 50, d].</summary>
    public Tensor Tokens(Tensor images)
    {
        using var scope = NewDisposeScope();
        var x = patches.forward(images).flatten(2).transpose(1, 2);                // [B, 49, d]
        x = cat(new[] { cls.expand(x.size(0), 1, Config.Dim), x }, 1) + positions; // [B, 50, d]
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>Attention matrices [B, H, 50, 50] of block <paramref name="block"/> for these images (eval mode).</summary>
    public Tensor AttentionMap(Tensor images, int block)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = Tokens(images);
        for (int i = 0; i < block; i++) x = blocks[i].forward(x);
        return blocks[block].attention.AttentionMap(blocks[block].AttentionInput(x)).MoveToOuterDisposeScope();
    }
}
