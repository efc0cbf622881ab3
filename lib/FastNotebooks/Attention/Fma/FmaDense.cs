using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fma;

/// <summary>
/// The reference: all n fine keys and every level's coarse keys side by side, an n×(n + Σ_l G_l·p) mask written from
/// <see cref="FmaLayout"/> query by query, one softmax. O(n²) — the oracle for <see cref="FmaBlocked"/>.
/// </summary>
public static class FmaDense
{
    public static Tensor Forward(Tensor q, Tensor k, Tensor v, IReadOnlyList<Tensor> coarseKeys, IReadOnlyList<Tensor> coarseValues,
        FmaLayout layout, bool scaleByGroupSize)
    {
        using var scope = NewDisposeScope();
        long b = q.size(0), h = q.size(1), d = q.size(3);
        var keys = new List<Tensor> { k };
        var values = new List<Tensor> { v };
        var bias = new List<double>();
        for (int level = 0; level < layout.Levels; level++)
        {
            keys.Add(coarseKeys[level].flatten(2, 3));                                      // [B, H, G·p, d]
            values.Add(coarseValues[level].flatten(2, 3));
        }
        var logits = q.matmul(cat(keys, 2).transpose(-1, -2)) / Math.Sqrt(d);             // [B, H, n, n + coarse]
        var (mask, logWeight) = MaskAndLogWeights(layout, coarseKeys.Select(c => (int)c.size(3)).ToArray(), scaleByGroupSize);
        logits = (logits + tensor(logWeight, dtype: q.dtype, device: q.device)).masked_fill(tensor(mask, device: q.device).logical_not(), double.NegativeInfinity);
        return logits.softmax(-1).matmul(cat(values, 2)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The effective mask [n, n + coarse] (true = attended) and the additive log-weights log(w/p) of coarse columns;
    /// useful on its own to draw the hierarchy.
    /// </summary>
    public static (bool[,] Mask, double[] LogWeights) MaskAndLogWeights(FmaLayout layout, int[] ranks, bool scaleByGroupSize)
    {
        int n = layout.Length;
        int columns = n + Enumerable.Range(0, layout.Levels).Sum(l => layout.Groups(l) * ranks[l]);
        var mask = new bool[n, columns];
        var logWeights = new double[columns];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                mask[i, j] = layout.SeesFine(i, j);
        int start = n;
        for (int level = 0; level < layout.Levels; level++)
        {
            int p = ranks[level];
            for (int c = 0; c < layout.Groups(level) * p; c++)
                logWeights[start + c] = scaleByGroupSize ? Math.Log((double)layout.GroupWidth(level) / p) : 0;
            for (int i = 0; i < n; i++)
                foreach (var g in layout.CoarseGroups(i, level))
                    for (int r = 0; r < p; r++) mask[i, start + g * p + r] = true;
            start += layout.Groups(level) * p;
        }
        return (mask, logWeights);
    }
}
