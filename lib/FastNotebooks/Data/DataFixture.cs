using System.Text;
using System.Text.Json;

namespace FastNotebooks.Data;

/// <summary>
/// A small slice of the real datasets, shipped in the repository under <c>data/fixture/</c> (its README says what is
/// in it and under which licence): the smoke profile reads it when nothing is cached, with the same readers as the
/// fetched data (<see cref="IdxReader"/>, the text readers of <see cref="Datasets"/>) and the same SHA-256 checks, so
/// parsing and hashing run in every test run. The fixture is never fetched: a missing or altered file is an error.
/// <see cref="Cut"/> rebuilds it from the fetched datasets.
/// </summary>
public static class DataFixture
{
    /// <summary>The fixture's folder relative to the repository root.</summary>
    public const string Folder = "data/fixture";

    /// <summary>MNIST images kept: the first ones of the training and of the test file.</summary>
    public const int TrainImages = 512, TestImages = 256;

    /// <summary>Characters kept from the start of Moby-Dick.</summary>
    public const int MobyDickCharacters = 100_000;

    /// <summary>E-mails kept per class (ham, spam): the first ones, in the cache's order, of at most <see cref="LongestMail"/> characters.</summary>
    public const int MailsPerClass = 24;

    /// <summary>Longest e-mail kept, in characters (keeps the fixture small).</summary>
    public const int LongestMail = 6_000;

    /// <summary>State of the Union addresses kept (every <see cref="SpeechStride"/>-th, in the cache's order), each cut to <see cref="SpeechCharacters"/>.</summary>
    public const int Speeches = 12, SpeechStride = 19, SpeechCharacters = 6_000;

    public static readonly CachedFile[] MnistFiles =
    {
        new("mnist/train-images-idx3-ubyte", "dc15d0b5d1b0c2e3735e17f364421a17ca95485dfe2e28bf4e8cc1c45b02bb2f"),
        new("mnist/train-labels-idx1-ubyte", "ac62e054281959338268df783398afca3e2244b1de6612e7140bd02995181396"),
        new("mnist/t10k-images-idx3-ubyte", "d13186a8171483437b6a936d3a0131b2bb83cc7008923c4be04f42b173a18935"),
        new("mnist/t10k-labels-idx1-ubyte", "7b7f0b73a7c9b36bc8377eb426dd6f4a2b668c90185f8f8f4175105f0d84fb0f"),
    };

    public static readonly CachedFile MobyDickFile = new("text/moby-dick.txt", "d6c2b6b2bdb69596bc3d98a3f68aef41e7500bb30c67d5f00161f1e01fb7d907");
    public static readonly CachedFile SpamAssassinFile = new("text/spam-assassin.jsonl", "8f09f4d38ca2172f15cfca14c15e002efa374961fb054ad1e2d1a268f177c983");
    public static readonly CachedFile StateOfTheUnionFile = new("text/sotu.jsonl", "99f47dceaae58988aa61f29a3c414242406ead336c3f5c4de17c0539d596e8b6");

    /// <summary>Every file of the fixture.</summary>
    public static IReadOnlyList<CachedFile> Files => MnistFiles.Append(MobyDickFile).Append(SpamAssassinFile).Append(StateOfTheUnionFile).ToList();

    /// <summary>
    /// The fixture's folder: <see cref="Folder"/> under the repository found by walking up from the current folder (a
    /// notebook runs in notebooks/, a test in its build output) or, failing that, from this library's own location (a
    /// notebook copied elsewhere still runs the repository's build).
    /// </summary>
    public static string Root
    {
        get
        {
            var starts = new[] { Environment.CurrentDirectory, Path.GetDirectoryName(typeof(DataFixture).Assembly.Location) ?? "" };
            foreach (var start in starts.Where(s => s.Length > 0))
                for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
                    if (File.Exists(Path.Combine(dir.FullName, "FastNotebooks.sln")) && Directory.Exists(Path.Combine(dir.FullName, Folder)))
                        return Path.Combine(dir.FullName, Folder);
            throw new DirectoryNotFoundException($"no {Folder} in a repository above {string.Join(" or ", starts.Where(s => s.Length > 0))}.");
        }
    }

    /// <summary>MNIST's first <see cref="TrainImages"/> training and <see cref="TestImages"/> test images with their labels.</summary>
    public static (IdxArray TrainImages, IdxArray TrainLabels, IdxArray TestImages, IdxArray TestLabels) Mnist() =>
        Datasets.LoadIdx(Verified(MnistFiles), MnistFiles);

    /// <summary>The first <see cref="MobyDickCharacters"/> characters of Moby-Dick.</summary>
    public static string MobyDick() => Datasets.ReadText(Path.Combine(Verified(MobyDickFile), MobyDickFile.RelativePath));

    /// <summary><see cref="MailsPerClass"/> ham and as many spam e-mails, ham first.</summary>
    public static IReadOnlyList<(string Text, bool Spam)> SpamAssassin() =>
        Datasets.ReadSpamAssassin(Path.Combine(Verified(SpamAssassinFile), SpamAssassinFile.RelativePath));

    /// <summary><see cref="Speeches"/> addresses spread over the years, each cut to its first <see cref="SpeechCharacters"/> characters.</summary>
    public static IReadOnlyList<Speech> StateOfTheUnion() =>
        Datasets.ReadStateOfTheUnion(Path.Combine(Verified(StateOfTheUnionFile), StateOfTheUnionFile.RelativePath));

    static string Verified(params CachedFile[] files) => Verify(Root, files);

    /// <summary>Checks that every file exists under <paramref name="root"/> with its SHA-256; returns the root.</summary>
    internal static string Verify(string root, IEnumerable<CachedFile> files)
    {
        foreach (var file in files)
        {
            var path = Path.Combine(root, file.RelativePath);
            if (!File.Exists(path)) throw new FileNotFoundException($"data fixture file missing: {path}", path);
            var actual = DataCache.Sha256(path);
            if (!string.Equals(actual, file.Sha256, StringComparison.OrdinalIgnoreCase))
                throw new InvalidDataException($"data fixture {file.RelativePath}: SHA-256 {actual}, expected {file.Sha256} (altered or cut by other rules; see {Folder}/README.md).");
        }
        return root;
    }

    /// <summary>
    /// Cuts the fixture from the fetched datasets under <paramref name="source"/> (a <see cref="DataCache.Root"/>
    /// holding MNIST, Moby-Dick, SpamAssassin and the State of the Union addresses) into <paramref name="destination"/>,
    /// by the rules in the constants above. The same cache always gives the same bytes, which <see cref="Files"/> pins.
    /// </summary>
    public static void Cut(string source, string destination)
    {
        Verify(source, Datasets.MnistFiles.Append(Datasets.MobyDickFile).Append(Datasets.SpamAssassinFile).Append(Datasets.StateOfTheUnionFile));
        var (trainImages, trainLabels, testImages, testLabels) = Datasets.LoadIdx(source, Datasets.MnistFiles);
        var cut = new[] { Head(trainImages, TrainImages), Head(trainLabels, TrainImages), Head(testImages, TestImages), Head(testLabels, TestImages) };
        foreach (var (file, array) in MnistFiles.Zip(cut))
            Write(destination, file, IdxReader.Encode(array.Dimensions, array.Data));

        var text = Datasets.ReadText(Path.Combine(source, Datasets.MobyDickFile.RelativePath));
        // Never split a surrogate pair: the cut must stay valid UTF-8.
        int end = Math.Min(MobyDickCharacters, text.Length);
        if (end < text.Length && char.IsHighSurrogate(text[end - 1])) end--;
        Write(destination, MobyDickFile, Encoding.UTF8.GetBytes(text[..end]));

        // The lines are kept as the cache wrote them, so the fixture's parser is the cache's.
        var mails = File.ReadLines(Path.Combine(source, Datasets.SpamAssassinFile.RelativePath))
            .Select(line => (Line: line, Mail: JsonDocument.Parse(line).RootElement))
            .Where(m => m.Mail.GetProperty("Text").GetString()!.Length <= LongestMail).ToList();
        var kept = mails.Where(m => !m.Mail.GetProperty("Spam").GetBoolean()).Take(MailsPerClass)
            .Concat(mails.Where(m => m.Mail.GetProperty("Spam").GetBoolean()).Take(MailsPerClass)).Select(m => m.Line);
        Write(destination, SpamAssassinFile, Encoding.UTF8.GetBytes(string.Join("\n", kept) + "\n"));

        var speeches = Datasets.ReadStateOfTheUnion(Path.Combine(source, Datasets.StateOfTheUnionFile.RelativePath))
            .Where((_, i) => i % SpeechStride == 0).Take(Speeches)
            .Select(s => s with { Text = s.Text[..Math.Min(SpeechCharacters, s.Text.Length)] })
            .Select(s => JsonSerializer.Serialize(s));
        Write(destination, StateOfTheUnionFile, Encoding.UTF8.GetBytes(string.Join("\n", speeches) + "\n"));
    }

    static IdxArray Head(IdxArray array, int count) =>
        new(array.Dimensions.Select((d, i) => i == 0 ? count : d).ToArray(), array.Data[..(count * array.ItemSize)]);

    static void Write(string root, CachedFile file, byte[] bytes) =>
        DataCache.WriteAtomically(Path.Combine(root, file.RelativePath), s => s.Write(bytes));
}
