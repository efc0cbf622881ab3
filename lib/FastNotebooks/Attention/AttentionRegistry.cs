using System.Text.RegularExpressions;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Softmax;

namespace FastNotebooks.Attention;

/// <summary>
/// Attention mechanisms by name, so models and notebooks can swap them with a string:
/// <c>softmax</c> (libtorch SDPA), <c>softmax-dense</c>, <c>linear</c> (elu + 1 features), <c>linear-dense</c>, and <c>fastmax{p}[-normalization][-dense]</c> with
/// p ∈ {1, 2, 3} and normalization one of mean-centered (default), zero-centered, none, squared-norm —
/// e.g. <c>fastmax2</c>, <c>fastmax1-zero-centered</c>, <c>fastmax2-dense</c>; <c>none</c>, the no-attention control; and the FMA names (<see cref="FmaNames"/>).
/// </summary>
public static partial class AttentionRegistry
{
    /// <summary>Names of mechanisms that take any sequence length (every fastmax normalization suffix is accepted as well).</summary>
    public static readonly IReadOnlyList<string> Names = new[]
    {
        "softmax", "softmax-dense", "linear", "linear-dense", "fastmax1", "fastmax2", "fastmax3", "fastmax2-zero-centered", "fastmax2-none",
        "fastmax2-squared-norm", "fastmax2-dense", LearnedScaleName, "none",
    };

    /// <summary>
    /// The sharpness-limit ablation (<see cref="LearnedScaleFastmax"/>): Fastmax p = 2 with a learned scale on s, which
    /// leaves the gradient bound's premise |s| ≤ 1.
    /// </summary>
    public const string LearnedScaleName = "fastmax2-learned-scale";

    /// <summary>
    /// Fast Multipole Attention: self-attention on lengths BlockSize·2^k only, and it needs headDim and maxLength.
    /// <c>fma</c> is the published method: coarse keys and values by a learned downsampling (a strided Conv1d per level,
    /// keys and values apart). <c>fma-depthwise</c> learns a depthwise Conv1d instead (fewer weights), and
    /// <c>fma-avgpool</c> is the ablation without weights (average pooling). Causal or bidirectional is the
    /// <c>causal</c> argument of <see cref="Create"/>, not part of the name.
    /// </summary>
    public static readonly IReadOnlyList<string> FmaNames = new[] { "fma", "fma-depthwise", "fma-avgpool" };

    static readonly Dictionary<string, FastmaxNormalization> NormalizationNames = new()
    {
        ["mean-centered"] = FastmaxNormalization.MeanCentered,
        ["zero-centered"] = FastmaxNormalization.ZeroCentered,
        ["none"] = FastmaxNormalization.None,
        ["squared-norm"] = FastmaxNormalization.SquaredNorm,
    };

    [GeneratedRegex(@"^fastmax(?<order>\d)(-(?<norm>mean-centered|zero-centered|none|squared-norm))?(?<dense>-dense)?$")]
    private static partial Regex FastmaxName();

    /// <summary>
    /// Makes the mechanism called <paramref name="name"/>. <paramref name="dropout"/> is the softmax attention
    /// dropout, or for Fastmax the quadratic-term dropout (p ≥ 2) or linear-term dropout (p = 1).
    /// </summary>
    /// <param name="name">A name from <see cref="Names"/> or <see cref="FmaNames"/>.</param>
    /// <param name="causal">Query i sees keys j ≤ Nk − Nq + i.</param>
    /// <param name="dropout">Attention dropout rate (training mode only).</param>
    /// <param name="headDim">Feature size per head; needed by FMA's learned downsampling.</param>
    /// <param name="maxLength">Longest sequence; needed by FMA to size its levels.</param>
    /// <param name="fastmaxDropout">For Fastmax (not its -dense form): the regularizer <paramref name="dropout"/> sets the rate of, in place of
    /// the order's default; null keeps the default.</param>
    public static AttentionMechanism Create(string name, bool causal = false, double dropout = 0, int headDim = 0, int maxLength = 0,
        FastmaxDropout? fastmaxDropout = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (FmaNames.Contains(name))
        {
            if (headDim < 1 || maxLength < 1)
                throw new ArgumentException($"'{name}' needs headDim and maxLength; got headDim {headDim}, maxLength {maxLength}.", nameof(headDim));
            // Blocks of 32 tokens, or an eighth of the length where that is shorter, so that every length has at least two
            // coarse levels (with m = n/4 or more there are none and FMA is plain local attention).
            int blockSize = Math.Min(32, Math.Max(2, maxLength / 8));
            return new Fma.FmaAttention(new Fma.FmaOptions
            {
                HeadDim = headDim, MaxLength = maxLength, BlockSize = blockSize, Rank = Math.Min(2, blockSize), Causal = causal, Dropout = dropout,
                Downsampling = FmaDownsamplingOf(name),
            });
        }
        if (name == LearnedScaleName)
        {
            if (dropout != 0) throw new ArgumentException($"'{name}' has no dropout; got dropout {dropout}.", nameof(dropout));
            return new LearnedScaleFastmax(causal);
        }
        switch (name)
        {
            case "softmax": return new SoftmaxAttention(causal, dropout);
            case "softmax-dense": return new SoftmaxDense(causal, dropout);
            case "linear": return new Linear.LinearAttention(causal);
            case "linear-dense": return new Linear.LinearDense(causal);
            case "none": return new NoAttention(causal);
        }
        var match = FastmaxName().Match(name);
        if (!match.Success)
            throw new ArgumentException($"unknown attention '{name}'; known: {string.Join(", ", Names.Concat(FmaNames))} (fastmax accepts -mean-centered, -zero-centered, -none, -squared-norm).", nameof(name));
        var options = FastmaxOptionsFor(name, causal, dropout);
        if (match.Groups["dense"].Success) return new FastmaxDenseAttention(options);
        return new FastmaxAttention(fastmaxDropout is { } kind ? options with { Dropout = kind, DropoutRate = dropout } : options);
    }

    /// <summary>The downsampling an FMA name stands for: <c>fma</c> the paper's learned Conv1d.</summary>
    public static Fma.FmaDownsampling FmaDownsamplingOf(string name) => name switch
    {
        "fma" => Fma.FmaDownsampling.Convolution,
        "fma-depthwise" => Fma.FmaDownsampling.DepthwiseConvolution,
        "fma-avgpool" => Fma.FmaDownsampling.AveragePooling,
        _ => throw new ArgumentException($"'{name}' is not an FMA name; known: {string.Join(", ", FmaNames)}.", nameof(name)),
    };

    /// <summary>The options a fastmax name stands for.</summary>
    public static FastmaxOptions FastmaxOptionsFor(string name, bool causal = false, double dropout = 0)
    {
        var match = FastmaxName().Match(name);
        if (!match.Success)
            throw new ArgumentException($"'{name}' is not a fastmax name (expected fastmax{{p}}[-normalization][-dense]).", nameof(name));
        int order = match.Groups["order"].Value[0] - '0';
        var normalization = match.Groups["norm"].Success ? NormalizationNames[match.Groups["norm"].Value] : FastmaxNormalization.MeanCentered;
        var options = new FastmaxOptions
        {
            Order = order,
            Normalization = normalization,
            Causal = causal,
            Dropout = dropout == 0 ? FastmaxDropout.None : order == 2 ? FastmaxDropout.QuadraticTerm : FastmaxDropout.LinearTerm,
            DropoutRate = dropout,
            // Models see short sequences too (50 tokens in the MNIST model), where the N×N form is the faster one.
            Algorithm = FastmaxAlgorithm.Auto,
        };
        options.Validate();
        return options;
    }
}
