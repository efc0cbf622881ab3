using static TorchSharp.torch;

namespace FastNotebooks.Data;

/// <summary>
/// A character-level corpus split contiguously: the first (1 − validationFraction) of the text trains, the tail
/// validates. Every window lies wholly inside one split, so no character of validation text is ever a training
/// target or context (the reference script's overlapping windows leaked across the split).
/// </summary>
public sealed class CharCorpus
{
    readonly Dictionary<char, long> _index;

    public CharCorpus(string text, double validationFraction = 0.1)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (validationFraction <= 0 || validationFraction >= 1)
            throw new ArgumentException($"validationFraction must be in (0, 1); got {validationFraction}.", nameof(validationFraction));
        Vocabulary = text.Distinct().OrderBy(c => c).ToArray();
        _index = Vocabulary.Select((c, i) => (c, (long)i)).ToDictionary(p => p.c, p => p.Item2);
        var ids = text.Select(c => _index[c]).ToArray();
        int cut = (int)(ids.Length * (1 - validationFraction));
        Train = ids[..cut];
        Validation = ids[cut..];
        SplitPosition = cut;
    }

    public char[] Vocabulary { get; }
    public long[] Train { get; }
    public long[] Validation { get; }

    /// <summary>Index in the text where validation starts.</summary>
    public int SplitPosition { get; }

    public long[] Encode(string text) => text.Select(c => _index.TryGetValue(c, out var id) ? id
        : throw new ArgumentException($"character '{c}' is not in the corpus vocabulary.", nameof(text))).ToArray();

    public string Decode(IEnumerable<long> ids) => new(ids.Select(i => Vocabulary[i]).ToArray());

    /// <summary>
    /// Batch <paramref name="step"/> of random windows from one split: inputs [B, context] and next-character targets
    /// [B, context]. A pure function of (seed, step), so a resumed run sees the same batches.
    /// </summary>
    /// <returns>The window starts too, so callers and tests can see which text was used.</returns>
    public (Tensor Inputs, Tensor Targets, int[] Starts) Batch(bool validation, int batchSize, int context, long seed, long step)
    {
        var ids = validation ? Validation : Train;
        if (ids.Length < context + 1)
            throw new ArgumentException($"the {(validation ? "validation" : "training")} split has {ids.Length} characters, fewer than context + 1 = {context + 1}.", nameof(context));
        var random = new Random(Seeds.Mix(seed, step, validation ? 1 : 0));
        var starts = Enumerable.Range(0, batchSize).Select(_ => random.Next(ids.Length - context)).ToArray();
        var inputs = new long[batchSize * context];
        var targets = new long[batchSize * context];
        for (int b = 0; b < batchSize; b++)
        {
            Array.Copy(ids, starts[b], inputs, b * context, context);
            Array.Copy(ids, starts[b] + 1, targets, b * context, context);
        }
        return (tensor(inputs).view(batchSize, context), tensor(targets).view(batchSize, context), starts);
    }
}
