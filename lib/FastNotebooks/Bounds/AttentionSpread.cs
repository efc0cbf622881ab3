using static TorchSharp.torch;

namespace FastNotebooks.Bounds;

/// <summary>
/// How sharply attention rows focus, summarized over rows: the ratio of the largest to the smallest weight of a row
/// (over the keys the row may see) and the row's entropy, also as a fraction of log(keys seen), the entropy of the
/// uniform row. Under the Fastmax bound's premise (p = 2, |s| ≤ 1) every ratio is at most
/// <see cref="BoundConstants.MaxRowSpread"/>; softmax has no such limit.
/// </summary>
/// <param name="Rows">Rows summarized.</param>
/// <param name="MedianRatio">Median over rows of max/min weight (∞ when a seen weight is exactly 0).</param>
/// <param name="MaxRatio">Largest max/min over rows.</param>
/// <param name="FractionAboveBound">Fraction of rows whose max/min exceeds 5, the most the bound's premise allows.</param>
/// <param name="MeanEntropy">Mean row entropy in nats.</param>
/// <param name="MeanRelativeEntropy">Mean of entropy / log(keys seen) over rows with at least two keys (1 = uniform).</param>
/// <param name="MinRelativeEntropy">Smallest entropy / log(keys seen): the most focused row.</param>
public sealed record AttentionSpreadSummary(long Rows, double MedianRatio, double MaxRatio, double FractionAboveBound,
    double MeanEntropy, double MeanRelativeEntropy, double MinRelativeEntropy);

/// <summary>Row spread of attention weights (see <see cref="AttentionSpreadSummary"/>).</summary>
public static class AttentionSpread
{
    /// <summary>
    /// Per-row max/min ratio, entropy (nats) and entropy / log(keys seen) of attention weights [.., N, Nk] whose rows sum
    /// to 1. With <paramref name="causal"/>, row i sees keys j ≤ Nk − N + i only (the others are ignored, whatever
    /// they hold); otherwise every key. Rows are flattened over the leading dimensions, in order.
    /// </summary>
    public static (double[] Ratio, double[] Entropy, double[] RelativeEntropy) PerRow(Tensor weights, bool causal = false)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (weights.dim() < 2)
            throw new ArgumentException($"weights must be [.., N, Nk]; got {weights.dim()} dimensions.", nameof(weights));
        long n = weights.shape[^2], nk = weights.shape[^1];
        if (causal && nk < n)
            throw new ArgumentException($"causal weights need Nk ≥ N; got N {n}, Nk {nk}.", nameof(weights));
        using var scope = NewDisposeScope();
        var w = weights.detach().to(float64).reshape(-1, n, nk);                           // [R/N, N, Nk]
        var seen = causal ? ones(n, nk, dtype: ScalarType.Bool).tril(nk - n) : ones(n, nk, dtype: ScalarType.Bool);
        var largest = w.masked_fill(seen.logical_not(), double.NegativeInfinity).amax(-1);   // [R/N, N]
        var smallest = w.masked_fill(seen.logical_not(), double.PositiveInfinity).amin(-1);
        var ratio = largest / smallest;                                                     // x/0 = ∞
        var terms = where(seen & (w > 0), -w * w.clamp_min(double.Epsilon).log(), zeros_like(w));
        var entropy = terms.sum(-1);
        var keys = seen.sum(-1).to(float64);                                               // [N]
        var relative = entropy / keys.log().clamp_min(double.Epsilon);
        return (ratio.flatten().data<double>().ToArray(), entropy.flatten().data<double>().ToArray(), relative.flatten().data<double>().ToArray());
    }

    /// <summary>
    /// The summary of <see cref="PerRow"/>. Rows that see a single key (the first causal row) have ratio 1 and entropy 0
    /// and are left out of the relative entropies.
    /// </summary>
    public static AttentionSpreadSummary Of(Tensor weights, bool causal = false)
    {
        var (ratio, entropy, relative) = PerRow(weights, causal);
        long n = weights.shape[^2], nk = weights.shape[^1];
        var multiKey = relative.Where((_, r) => !causal || nk - n + r % n >= 1).ToArray();
        var sorted = ratio.Order().ToArray();
        return new AttentionSpreadSummary(ratio.Length, sorted[sorted.Length / 2], sorted[^1],
            ratio.Count(x => x > BoundConstants.MaxRowSpread) / (double)ratio.Length,
            entropy.Average(), multiKey.DefaultIfEmpty(double.NaN).Average(), multiKey.DefaultIfEmpty(double.NaN).Min());
    }
}
