using FastNotebooks.Data;

namespace FastNotebooks.Tests.Data;

public class IdxReaderTests
{
    static string Write(byte[] bytes)
    {
        var path = Path.Combine(Path.GetTempPath(), $"idx-{Guid.NewGuid():N}");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void Reads_a_generated_file()
    {
        var pixels = Enumerable.Range(0, 3 * 4 * 5).Select(i => (byte)i).ToArray();
        var array = IdxReader.Read(Write(IdxReader.Encode(new[] { 3, 4, 5 }, pixels)));
        Assert.Equal(new[] { 3, 4, 5 }, array.Dimensions);
        Assert.Equal(20, array.ItemSize);
        Assert.Equal(pixels, array.Data);
    }

    [Fact]
    public void Corrupted_header_is_reported_with_the_bytes_found()
    {
        var bytes = IdxReader.Encode(new[] { 2, 2 }, new byte[4]);
        bytes[2] = 0x0D;
        var path = Write(bytes);
        var error = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));
        Assert.Contains("magic", error.Message);
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void Truncated_body_is_reported_not_read_as_a_smaller_dataset()
    {
        var bytes = IdxReader.Encode(new[] { 10, 28, 28 }, new byte[10 * 28 * 28]);
        var error = Assert.Throws<InvalidDataException>(() => IdxReader.Parse(bytes[..^100], "train-images"));
        Assert.Contains("truncated", error.Message);
        Assert.Contains("7740", error.Message);
    }

    [Fact]
    public void A_file_with_the_wrong_hash_is_invalid_and_removed()
    {
        var path = Write(new byte[] { 1, 2, 3 });
        var good = DataCache.Sha256(path);
        Assert.True(DataCache.IsValid(path, good));
        File.WriteAllBytes(path, new byte[] { 1, 2 });
        Assert.False(DataCache.IsValid(path, good));
        Assert.False(File.Exists(path));
    }
}
