using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.Reference;
using static TorchSharp.torch;

namespace FastNotebooks.Bounds;

/// <summary>
/// An attention mechanism seen as a map from one token's similarities s_i· to its attention row a_i·, plus the
/// normalization that turns q, k into q̂, k̂ (s = q̂·k̂ᵀ). Fastmax uses temperature 1. Softmax uses s = q·kᵀ
/// directly, without the usual 1/√D: the scale sweep already covers any temperature.
/// </summary>
public sealed record BoundMechanism
{
    public string Name { get; }
    public bool IsSoftmax { get; }
    public int Order { get; }
    public FastmaxNormalization Normalization { get; }
    readonly double[] _coefficients;

    BoundMechanism(string name, bool isSoftmax, int order, FastmaxNormalization normalization)
    {
        Name = name;
        IsSoftmax = isSoftmax;
        Order = order;
        Normalization = normalization;
        _coefficients = isSoftmax ? Array.Empty<double>() : new FastmaxOptions { Order = order, Normalization = normalization }.ResolvedCoefficients();
    }

    /// <summary>Fastmax with Taylor coefficients 1/l! up to order p and the given normalization of q and k.</summary>
    public static BoundMechanism Fastmax(int order, FastmaxNormalization normalization) => new($"fastmax p={order}", false, order, normalization);

    /// <summary>a = softmax(q·kᵀ) row-wise, no 1/√D.</summary>
    public static BoundMechanism Softmax { get; } = new("softmax", true, 0, FastmaxNormalization.None);

    /// <summary>The mechanisms of the sweep: p = 2 with every normalization, p = 1 mean-centered, softmax.</summary>
    public static IReadOnlyList<BoundMechanism> All { get; } = new[]
    {
        Fastmax(2, FastmaxNormalization.MeanCentered),
        Fastmax(2, FastmaxNormalization.ZeroCentered),
        Fastmax(2, FastmaxNormalization.None),
        Fastmax(2, FastmaxNormalization.SquaredNorm),
        Fastmax(1, FastmaxNormalization.MeanCentered),
        Softmax,
    };

    /// <summary>The normalization as a table label ("q·kᵀ, no 1/√D" for softmax).</summary>
    public string NormalizationLabel => IsSoftmax ? "q·kᵀ, no 1/√D" : Normalization.ToString();

    /// <summary>True when the bounds of <see cref="BoundConstants"/> are claimed: p = 2 with a normalization that keeps |s| ≤ 1.</summary>
    public bool BoundClaimed => !IsSoftmax && Order == 2 &&
        Normalization is FastmaxNormalization.MeanCentered or FastmaxNormalization.ZeroCentered;

    /// <summary>q̂ or k̂ [N, D] from q or k [N, D] (identity for softmax).</summary>
    public Tensor Normalize(Tensor x) => IsSoftmax ? x.alias() : FastmaxNormalizer.Normalize(x, Normalization);

    /// <summary>s = q̂·k̂ᵀ [Nq, Nk] from q [Nq, D], k [Nk, D].</summary>
    public Tensor Similarities(Tensor q, Tensor k)
    {
        using var scope = NewDisposeScope();
        return Normalize(q).matmul(Normalize(k).t()).MoveToOuterDisposeScope();
    }

    /// <summary>Attention rows a [Nq, Nk] from similarities s [Nq, Nk]: f(s)/Σ_l f(s_·l), or softmax(s).</summary>
    public Tensor Scores(Tensor s)
    {
        if (IsSoftmax) return s.softmax(-1);
        using var scope = NewDisposeScope();
        var f = TaylorFeatures.Polynomial(s, _coefficients);
        return (f / f.sum(-1, keepdim: true)).MoveToOuterDisposeScope();
    }

    /// <summary>The kernel coefficients a_0..a_p (empty for softmax).</summary>
    public IReadOnlyList<double> Coefficients => _coefficients;

    public override string ToString() => $"{Name} ({NormalizationLabel})";
}
