namespace FastNotebooks.Attention.Fma;

/// <summary>
/// How each level's coarse keys and values are made from the fine ones (per level, keys and values apart). The paper's
/// method learns them (<see cref="Convolution"/>, the default); <see cref="AveragePooling"/> is the weightless ablation.
/// </summary>
public enum FmaDownsampling
{
    /// <summary>Conv1d(d → p·d, kernel = stride = group width w): the richest, w·p·d² weights per level.</summary>
    Convolution,
    /// <summary>Depthwise Conv1d (groups = d): each channel summarized on its own, w·p·d weights per level.</summary>
    DepthwiseConvolution,
    /// <summary>Average pooling over w/p tokens: no weights.</summary>
    AveragePooling,
}

/// <summary>
/// Fast Multipole Attention (Kang et al., arXiv 2310.11960), 1D. Sequence length n must be BlockSize·2^k.
/// Defaults follow the paper's small settings; MaxLength fixes how many levels get learned weights.
/// </summary>
public sealed record FmaOptions
{
    /// <summary>Fine block size m: the near field is the query's block and its neighbour(s).</summary>
    public int BlockSize { get; init; } = 32;

    /// <summary>Coarse rank p: coarse keys (and values) per group at every level.</summary>
    public int Rank { get; init; } = 2;

    /// <summary>Feature size per head.</summary>
    public int HeadDim { get; init; } = 32;

    /// <summary>Longest sequence the module will see; levels = log2(MaxLength/m) − 1.</summary>
    public int MaxLength { get; init; } = 1024;

    public bool Causal { get; init; }

    /// <summary>How coarse keys and values are made; the paper's learned Conv1d by default.</summary>
    public FmaDownsampling Downsampling { get; init; } = FmaDownsampling.Convolution;

    /// <summary>Multiply each coarse weight by w/p, the number of tokens it stands for (the paper's scale_attn).</summary>
    public bool ScaleByGroupSize { get; init; } = true;

    /// <summary>Dropout on the attention probabilities (training mode only).</summary>
    public double Dropout { get; init; }

    public void Validate()
    {
        if (BlockSize < 1) throw new ArgumentException($"BlockSize must be at least 1; got {BlockSize}.", nameof(BlockSize));
        if (Rank < 1 || Rank > BlockSize) throw new ArgumentException($"Rank must be in [1, BlockSize = {BlockSize}]; got {Rank}.", nameof(Rank));
        if (Downsampling == FmaDownsampling.AveragePooling && BlockSize % Rank != 0)
            throw new ArgumentException($"AveragePooling needs Rank to divide BlockSize; got Rank {Rank}, BlockSize {BlockSize}.", nameof(Rank));
        if (HeadDim < 1) throw new ArgumentException($"HeadDim must be at least 1; got {HeadDim}.", nameof(HeadDim));
        FmaLayout.RequireLength(MaxLength, BlockSize, nameof(MaxLength));
        if (Dropout < 0 || Dropout >= 1) throw new ArgumentException($"Dropout must be in [0, 1); got {Dropout}.", nameof(Dropout));
    }
}
