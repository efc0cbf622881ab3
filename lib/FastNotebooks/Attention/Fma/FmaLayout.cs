using System.Numerics;

namespace FastNotebooks.Attention.Fma;

/// <summary>
/// Which keys and coarse groups each query sees. Level l has groups of width w = m·2^l (l = 0..L−1, L = log2(n/m) − 1,
/// the coarsest n/4). Near field: the query's block b = ⌊i/m⌋ and block b − 1 (and b + 1 unless causal), masked to
/// j ≤ i when causal. Far field at level l, with G = ⌊i/w⌋ the query's group and s = ⌊G/2⌋ its parent: the
/// children of the parent's neighbours that are not the query group's neighbours — groups 2s − 2 and 2s + 3 always,
/// 2s − 1 when G is odd, 2s + 2 when G is even; causal keeps only those before the query. Near field and levels
/// partition the (causal) past exactly once.
/// </summary>
public sealed record FmaLayout(int Length, int BlockSize, bool Causal)
{
    public int Blocks => Length / BlockSize;

    public int Levels => LevelsFor(Length, BlockSize);

    public static int LevelsFor(int length, int blockSize) =>
        length / blockSize <= 2 ? 0 : BitOperations.Log2((uint)(length / blockSize)) - 1;

    public int GroupWidth(int level) => BlockSize << level;

    public int Groups(int level) => Length / GroupWidth(level);

    /// <summary>Near-field blocks of query i (existing ones only).</summary>
    public IEnumerable<int> NearBlocks(int i)
    {
        int b = i / BlockSize;
        if (b > 0) yield return b - 1;
        yield return b;
        if (!Causal && b + 1 < Blocks) yield return b + 1;
    }

    /// <summary>Whether query i attends to fine key j.</summary>
    public bool SeesFine(int i, int j) => NearBlocks(i).Contains(j / BlockSize) && (!Causal || j <= i);

    /// <summary>Coarse groups of <paramref name="level"/> that query i attends to.</summary>
    public IEnumerable<int> CoarseGroups(int i, int level)
    {
        int group = i / GroupWidth(level), s = group / 2;
        bool odd = group % 2 == 1;
        var candidates = Causal
            ? new[] { 2 * s - 2, odd ? 2 * s - 1 : -1 }
            : new[] { 2 * s - 2, odd ? 2 * s - 1 : -1, odd ? -1 : 2 * s + 2, 2 * s + 3 };
        return candidates.Where(g => g >= 0 && g < Groups(level));
    }

    /// <summary>Slots per super-block in the blocked form: groups 2s−2, 2s−1 (and 2s+2, 2s+3 unless causal).</summary>
    public int[] SlotOffsets => Causal ? new[] { -2, -1 } : new[] { -2, -1, 2, 3 };

    public static void RequireLength(int length, int blockSize, string argument)
    {
        if (length < blockSize || length % blockSize != 0 || !BitOperations.IsPow2(length / blockSize))
            throw new ArgumentException(
                $"FMA needs a sequence length of BlockSize·2^k (BlockSize = {blockSize}); got {length}. Pad the sequence.", argument);
    }
}
