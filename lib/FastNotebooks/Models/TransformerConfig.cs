namespace FastNotebooks.Models;

/// <summary>
/// A pre-LayerNorm transformer: width, heads, blocks, MLP width, the attention mechanism by name
/// (<see cref="Attention.AttentionRegistry"/>), dropout and the longest sequence (for learned positions and FMA).
/// </summary>
/// <param name="Dim">Model width d.</param>
/// <param name="Heads">Attention heads (d must divide evenly).</param>
/// <param name="Blocks">Transformer blocks.</param>
/// <param name="MlpDim">Hidden width of the GELU MLP.</param>
/// <param name="Attention">Mechanism name (<see cref="FastNotebooks.Attention.AttentionRegistry"/>).</param>
/// <param name="Dropout">Dropout on the residual branches (attention output and MLP).</param>
/// <param name="MaxTokens">Longest sequence: size of the learned positions.</param>
/// <param name="AttentionDropout">The mechanism's own regularizer rate: dropout on softmax probabilities, or Fastmax's
/// <paramref name="FastmaxDropoutKind"/> (by default quadratic-term for p = 2, linear-term for p = 1).</param>
/// <param name="FastmaxDropoutKind">Which Fastmax regularizer AttentionDropout drives; null for the default.</param>
public sealed record TransformerConfig(int Dim, int Heads, int Blocks, int MlpDim, string Attention = "softmax", double Dropout = 0, int MaxTokens = 1024,
    double AttentionDropout = 0, Attention.Fastmax.FastmaxDropout? FastmaxDropoutKind = null)
{
    /// <summary>The paper's MNIST model: d 96, 4 heads (24 per head), 6 blocks, MLP 192, no dropout.</summary>
    public static TransformerConfig PaperMnist(string attention) => new(96, 4, 6, 192, attention, 0, 50);

    /// <summary>The paper's character LM: d 256, 8 heads (32 per head), 8 blocks, MLP 1024.</summary>
    public static TransformerConfig PaperCharLm(string attention, int context) => new(256, 8, 8, 1024, attention, 0, context);

    public int HeadDim => Dim / Heads;

    public void Validate()
    {
        if (Dim < 1 || Heads < 1 || Dim % Heads != 0)
            throw new ArgumentException($"Dim must be a positive multiple of Heads; got Dim {Dim}, Heads {Heads}.", nameof(Dim));
        if (Blocks < 1 || MlpDim < 1 || MaxTokens < 1)
            throw new ArgumentException($"Blocks, MlpDim and MaxTokens must be positive; got {Blocks}, {MlpDim}, {MaxTokens}.", nameof(Blocks));
        if (Dropout < 0 || Dropout >= 1) throw new ArgumentException($"Dropout must be in [0, 1); got {Dropout}.", nameof(Dropout));
        if (AttentionDropout < 0) throw new ArgumentException($"AttentionDropout must be non-negative; got {AttentionDropout}.", nameof(AttentionDropout));
    }
}
