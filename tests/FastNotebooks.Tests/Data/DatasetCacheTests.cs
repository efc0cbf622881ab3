using FastNotebooks.Data;

namespace FastNotebooks.Tests.Data;

/// <summary>The cache's contract without the network: fetch only when needed, refetch what is corrupt, reject foreign bytes.</summary>
public sealed class DatasetCacheTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("fastnotebooks-cache-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    static readonly byte[] Content = "the bytes the project was checked with"u8.ToArray();

    CachedFile Expected(string name)
    {
        var probe = Path.Combine(_root, "probe");
        File.WriteAllBytes(probe, Content);
        var hash = DataCache.Sha256(probe);
        File.Delete(probe);
        return new CachedFile(name, hash);
    }

    Action FetchWriting(byte[] bytes, string name, Action counted) => () =>
    {
        counted();
        DataCache.WriteAtomically(Path.Combine(_root, name), s => s.Write(bytes));
    };

    [Fact]
    public void A_valid_cache_is_not_fetched_again()
    {
        var file = Expected("text/a.txt");
        int fetches = 0;
        Datasets.Ensure(_root, new[] { file }, FetchWriting(Content, file.RelativePath, () => fetches++));
        Datasets.Ensure(_root, new[] { file }, FetchWriting(Content, file.RelativePath, () => fetches++));
        Assert.Equal(1, fetches);
    }

    [Fact]
    public void A_truncated_file_is_fetched_again()
    {
        var file = Expected("text/a.txt");
        int fetches = 0;
        Datasets.Ensure(_root, new[] { file }, FetchWriting(Content, file.RelativePath, () => fetches++));
        File.WriteAllBytes(Path.Combine(_root, file.RelativePath), Content[..5]);
        Datasets.Ensure(_root, new[] { file }, FetchWriting(Content, file.RelativePath, () => fetches++));
        Assert.Equal(2, fetches);
        Assert.Equal(Content, File.ReadAllBytes(Path.Combine(_root, file.RelativePath)));
    }

    [Fact]
    public void Foreign_bytes_are_an_error_naming_the_file_and_are_not_kept()
    {
        var file = Expected("text/a.txt");
        var error = Assert.Throws<InvalidDataException>(() =>
            Datasets.Ensure(_root, new[] { file }, FetchWriting("other bytes"u8.ToArray(), file.RelativePath, () => { })));
        Assert.Contains("text/a.txt", error.Message);
        Assert.Contains(file.Sha256, error.Message);
        Assert.False(File.Exists(Path.Combine(_root, file.RelativePath)));
    }

    [Fact]
    public void A_fetch_that_writes_nothing_is_an_error()
    {
        var file = Expected("text/a.txt");
        var error = Assert.Throws<IOException>(() => Datasets.Ensure(_root, new[] { file }, () => { }));
        Assert.Contains("text/a.txt", error.Message);
    }

    [Fact]
    public void A_failed_write_leaves_no_partial_file_and_keeps_the_old_one()
    {
        var path = Path.Combine(_root, "x.bin");
        File.WriteAllBytes(path, Content);
        Assert.Throws<InvalidOperationException>(() => DataCache.WriteAtomically(path, s =>
        {
            s.Write(new byte[] { 1, 2, 3 });
            throw new InvalidOperationException("interrupted");
        }));
        Assert.Equal(Content, File.ReadAllBytes(path));
        Assert.Equal(new[] { path }, Directory.GetFiles(_root));
    }

    [Fact]
    public void A_missing_client_is_one_line_saying_what_to_install()
    {
        var error = Assert.Throws<InvalidOperationException>(() => PackageFetch.Run("fastnotebooks-no-such-client", "--version", _root, "the no-such client"));
        Assert.Contains("'fastnotebooks-no-such-client' is not available", error.Message);
        Assert.Contains("install the no-such client", error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }
}
