using static TorchSharp.torch;

namespace FastNotebooks.Data;

/// <summary>
/// Images and labels from IDX arrays as float tensors in [0, 1], and epoch-shuffled batches that are a pure function of
/// (seed, step) — resumable without saving any sampler state.
/// </summary>
public sealed class ImageBatches
{
    readonly byte[] _pixels;
    readonly byte[] _labels;

    public ImageBatches(IdxArray images, IdxArray labels, int? limit = null)
    {
        if (images.Count != labels.Count)
            throw new ArgumentException($"{images.Count} images but {labels.Count} labels.", nameof(labels));
        Count = Math.Min(images.Count, limit ?? int.MaxValue);
        Height = images.Dimensions[1];
        Width = images.Dimensions[2];
        _pixels = images.Data[..(Count * Height * Width)];
        _labels = labels.Data[..Count];
    }

    ImageBatches(byte[] pixels, byte[] labels, int count, int height, int width) =>
        (_pixels, _labels, Count, Height, Width) = (pixels, labels, count, height, width);

    /// <summary>The first <paramref name="count"/> images only (a small training set).</summary>
    public ImageBatches Head(int count)
    {
        if (count < 1 || count > Count) throw new ArgumentOutOfRangeException(nameof(count), count, $"must be in [1, {Count}].");
        return new ImageBatches(_pixels[..(count * Height * Width)], _labels[..count], count, Height, Width);
    }

    public int Count { get; }
    public int Height { get; }
    public int Width { get; }

    /// <summary>Images [B, 1, H, W] and labels [B] of the given indices.</summary>
    public (Tensor Images, Tensor Labels) Take(IReadOnlyList<int> indices)
    {
        int size = Height * Width;
        var pixels = new float[indices.Count * size];
        var labels = new long[indices.Count];
        for (int i = 0; i < indices.Count; i++)
        {
            for (int p = 0; p < size; p++) pixels[i * size + p] = _pixels[indices[i] * size + p] / 255f;
            labels[i] = _labels[indices[i]];
        }
        return (tensor(pixels).view(indices.Count, 1, Height, Width), tensor(labels));
    }

    /// <summary>Training batch <paramref name="step"/>: epochs are permutations seeded by (seed, epoch).</summary>
    public (Tensor Images, Tensor Labels) Batch(int batchSize, long seed, long step)
    {
        int perEpoch = Math.Max(1, Count / batchSize);
        long epoch = step / perEpoch;
        var order = Enumerable.Range(0, Count).ToArray();
        new Random(Seeds.Mix(seed, epoch)).Shuffle(order);
        int start = (int)(step % perEpoch) * batchSize;
        return Take(order.Skip(start).Take(Math.Min(batchSize, Count)).ToArray());
    }

    /// <summary>Every image in order, in batches (for evaluation).</summary>
    public IEnumerable<(Tensor Images, Tensor Labels)> All(int batchSize)
    {
        for (int start = 0; start < Count; start += batchSize)
            yield return Take(Enumerable.Range(start, Math.Min(batchSize, Count - start)).ToArray());
    }
}
