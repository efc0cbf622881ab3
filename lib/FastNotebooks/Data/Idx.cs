using System.Buffers.Binary;

namespace FastNotebooks.Data;

/// <summary>An IDX array (LeCun's MNIST format): unsigned bytes with their dimensions.</summary>
public sealed record IdxArray(int[] Dimensions, byte[] Data)
{
    public int Count => Dimensions[0];

    /// <summary>Elements per item (28·28 for MNIST images, 1 for labels).</summary>
    public int ItemSize => Dimensions.Skip(1).Aggregate(1, (a, b) => a * b);
}

/// <summary>
/// Reads IDX files: magic 0x00 0x00 0x08 (unsigned byte) then the rank, big-endian int32 dimensions, then the body.
/// A wrong magic number, a rank or dimension that makes no sense, or a body of the wrong size is an error naming the
/// file and what was wrong — a truncated download must not be read as a smaller dataset.
/// </summary>
public static class IdxReader
{
    public static IdxArray Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"IDX file not found: {path}", path);
        return Parse(File.ReadAllBytes(path), path);
    }

    public static IdxArray Parse(byte[] bytes, string name)
    {
        if (bytes.Length < 4)
            throw new InvalidDataException($"{name}: {bytes.Length} bytes is too short for an IDX header.");
        if (bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08)
            throw new InvalidDataException($"{name}: bad IDX magic number {bytes[0]:x2} {bytes[1]:x2} {bytes[2]:x2} {bytes[3]:x2} (expected 00 00 08 <rank>).");
        int rank = bytes[3];
        if (rank < 1 || rank > 4 || bytes.Length < 4 + 4 * rank)
            throw new InvalidDataException($"{name}: IDX rank {rank} with a {bytes.Length}-byte file.");
        var dimensions = new int[rank];
        long expected = 1;
        for (int i = 0; i < rank; i++)
        {
            dimensions[i] = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4 + 4 * i));
            if (dimensions[i] <= 0) throw new InvalidDataException($"{name}: IDX dimension {i} is {dimensions[i]}.");
            expected *= dimensions[i];
        }
        int header = 4 + 4 * rank;
        if (bytes.Length - header != expected)
            throw new InvalidDataException(
                $"{name}: IDX body has {bytes.Length - header} bytes but dimensions [{string.Join(", ", dimensions)}] need {expected} (truncated or corrupt).");
        return new IdxArray(dimensions, bytes[header..]);
    }

    /// <summary>The bytes of an IDX file holding <paramref name="data"/> with <paramref name="dimensions"/> (for tests and caches).</summary>
    public static byte[] Encode(int[] dimensions, byte[] data)
    {
        var bytes = new byte[4 + 4 * dimensions.Length + data.Length];
        bytes[2] = 0x08;
        bytes[3] = (byte)dimensions.Length;
        for (int i = 0; i < dimensions.Length; i++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * i), dimensions[i]);
        data.CopyTo(bytes, 4 + 4 * dimensions.Length);
        return bytes;
    }
}
