using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fma;

/// <summary>
/// FMA in blocks: per query, the near field (2 or 3 blocks of m keys) and per level a fixed set of coarse slots
/// (2 or 4 groups of p), all in one softmax. Memory n·(3m + 4pL): O(n log n). Masks come from <see cref="FmaLayout"/>.
/// </summary>
public static class FmaBlocked
{
    /// <summary>o [B, H, n, Dv] from q, k [B, H, n, d], v [B, H, n, Dv] and per-level coarse keys/values [B, H, G_l, p, ·].</summary>
    public static Tensor Forward(Tensor q, Tensor k, Tensor v, IReadOnlyList<Tensor> coarseKeys, IReadOnlyList<Tensor> coarseValues,
        FmaLayout layout, bool scaleByGroupSize, double dropout, bool training)
    {
        using var scope = NewDisposeScope();
        long b = q.size(0), h = q.size(1), n = q.size(2), d = q.size(3), dv = v.size(3);
        int m = layout.BlockSize, blocks = layout.Blocks;
        double scale = 1 / Math.Sqrt(d);

        // Near field: blocks b−1, b (, b+1) of padded keys.
        var nearOffsets = layout.Causal ? new[] { 0, 1 } : new[] { 0, 1, 2 };          // padded index of b−1 is b
        var paddedK = nn.functional.pad(k, new long[] { 0, 0, m, m }).view(b, h, blocks + 2, m, d);
        var paddedV = nn.functional.pad(v, new long[] { 0, 0, m, m }).view(b, h, blocks + 2, m, dv);
        var nearIndex = NearIndex(blocks, nearOffsets, q.device);
        var nearK = paddedK.index_select(2, nearIndex).view(b, h, blocks, nearOffsets.Length * m, d);
        var nearV = paddedV.index_select(2, nearIndex).view(b, h, blocks, nearOffsets.Length * m, dv);
        var qBlocks = q.view(b, h, blocks, m, d);
        var nearScores = qBlocks.matmul(nearK.transpose(-1, -2)) * scale;                 // [B, H, nb, m, slots·m]
        nearScores = nearScores.masked_fill(NearMask(layout, nearOffsets, q.device).logical_not(), double.NegativeInfinity)
            .view(b, h, n, nearOffsets.Length * m);

        var scores = new List<Tensor> { nearScores };
        var slotValues = new List<Tensor>();
        var offsets = layout.SlotOffsets;
        for (int level = 0; level < layout.Levels; level++)
        {
            int w = layout.GroupWidth(level), groups = layout.Groups(level), superBlocks = groups / 2, p = (int)coarseKeys[level].size(3);
            var index = SlotIndex(superBlocks, offsets, q.device);
            var slotK = Gather(coarseKeys[level], index).view(b, h, superBlocks, offsets.Length * p, d);
            slotValues.Add(Gather(coarseValues[level], index).view(b, h, superBlocks, offsets.Length * p, dv));
            var levelScores = q.view(b, h, superBlocks, 2 * w, d).matmul(slotK.transpose(-1, -2)) * scale; // [B, H, S, 2w, slots·p]
            if (scaleByGroupSize) levelScores = levelScores + Math.Log((double)w / p);
            levelScores = levelScores.masked_fill(SlotMask(layout, level, offsets, p, q.device).logical_not(), double.NegativeInfinity);
            scores.Add(levelScores.view(b, h, n, offsets.Length * p));
        }

        var probabilities = cat(scores, -1).softmax(-1);
        if (training && dropout > 0) probabilities = nn.functional.dropout(probabilities, dropout, training: true);
        var sizes = scores.Select(s => s.size(3)).ToArray();
        var parts = probabilities.split(sizes, -1);
        var output = parts[0].reshape(b, h, blocks, m, -1).matmul(nearV).view(b, h, n, dv);
        for (int level = 0; level < layout.Levels; level++)
        {
            int w = layout.GroupWidth(level), superBlocks = layout.Groups(level) / 2;
            output = output + parts[level + 1].reshape(b, h, superBlocks, 2 * w, -1).matmul(slotValues[level]).view(b, h, n, dv);
        }
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>Coarse [B, H, G, p, e] padded by two groups each side, gathered at 2s + 2 + offset: [B, H, S·slots, p, e].</summary>
    static Tensor Gather(Tensor coarse, Tensor index) =>
        nn.functional.pad(coarse, new long[] { 0, 0, 0, 0, 2, 2 }).index_select(2, index);

    static Tensor NearIndex(int blocks, int[] offsets, Device device) =>
        tensor(Enumerable.Range(0, blocks).SelectMany(blk => offsets.Select(o => (long)(blk + o))).ToArray(), device: device);

    static Tensor SlotIndex(int superBlocks, int[] offsets, Device device) =>
        tensor(Enumerable.Range(0, superBlocks).SelectMany(s => offsets.Select(o => (long)(2 * s + 2 + o))).ToArray(), device: device);

    /// <summary>[nb, m, slots·m]: true where query (block, i) sees the near key in slot position j.</summary>
    static Tensor NearMask(FmaLayout layout, int[] offsets, Device device)
    {
        int m = layout.BlockSize, blocks = layout.Blocks;
        var mask = new bool[blocks * m * offsets.Length * m];
        int at = 0;
        for (int blk = 0; blk < blocks; blk++)
        for (int i = 0; i < m; i++)
        foreach (var o in offsets)
        for (int j = 0; j < m; j++)
        {
            int keyBlock = blk + o - 1, query = blk * m + i, key = keyBlock * m + j;
            mask[at++] = keyBlock >= 0 && keyBlock < blocks && layout.SeesFine(query, key);
        }
        return tensor(mask, device: device).view(blocks, m, offsets.Length * m);
    }

    /// <summary>[S, 2w, slots·p]: true where the query at that position of super-block s sees that coarse slot.</summary>
    static Tensor SlotMask(FmaLayout layout, int level, int[] offsets, int p, Device device)
    {
        int w = layout.GroupWidth(level), superBlocks = layout.Groups(level) / 2;
        var mask = new bool[superBlocks * 2 * offsets.Length];
        for (int s = 0; s < superBlocks; s++)
        for (int half = 0; half < 2; half++)
        {
            var seen = layout.CoarseGroups((2 * s + half) * w, level).ToHashSet();
            for (int slot = 0; slot < offsets.Length; slot++)
                mask[(s * 2 + half) * offsets.Length + slot] = seen.Contains(2 * s + offsets[slot]);
        }
        using var perHalf = tensor(mask, device: device).view(superBlocks, 2, 1, offsets.Length, 1);
        return perHalf.expand(superBlocks, 2, w, offsets.Length, p).reshape(superBlocks, 2 * w, offsets.Length * p);
    }
}
