using FastNotebooks.Data;
using Xunit.Abstractions;

namespace FastNotebooks.Tests.Data;

/// <summary>
/// The real-data fixture in data/fixture: its files pass their SHA-256 checks and parse, through the readers the
/// fetched data goes through, into the counts its README states; and cutting it again from the fetched data gives the
/// same bytes (the generator, see data/fixture/README.md).
/// </summary>
public sealed class DataFixtureTests(ITestOutputHelper log)
{
    /// <summary>Set to 1 to write a freshly cut fixture into the repository (and print its hashes) instead of a temporary folder.</summary>
    public const string WriteVariable = "FASTNOTEBOOKS_WRITE_FIXTURE";

    [Fact]
    public void Mnist_fixture_parses_to_the_stated_counts_with_every_digit()
    {
        var (trainImages, trainLabels, testImages, testLabels) = DataFixture.Mnist();
        Assert.Equal(new[] { DataFixture.TrainImages, 28, 28 }, trainImages.Dimensions);
        Assert.Equal(new[] { DataFixture.TrainImages }, trainLabels.Dimensions);
        Assert.Equal(new[] { DataFixture.TestImages, 28, 28 }, testImages.Dimensions);
        Assert.Equal(new[] { DataFixture.TestImages }, testLabels.Dimensions);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (byte)i), trainLabels.Data.Distinct().Order());
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (byte)i), testLabels.Data.Distinct().Order());
        // Real digits are mostly background: about a fifth of MNIST's pixels are non-zero.
        double inked = trainImages.Data.Count(b => b != 0) / (double)trainImages.Data.Length;
        Assert.InRange(inked, 0.1, 0.3);
    }

    [Fact]
    public void Text_fixtures_parse_to_the_stated_counts()
    {
        var moby = DataFixture.MobyDick();
        Assert.Equal(DataFixture.MobyDickCharacters, moby.Length);
        Assert.StartsWith("CHAPTER 1. Loomings", moby);

        var mails = DataFixture.SpamAssassin();
        Assert.Equal(2 * DataFixture.MailsPerClass, mails.Count);
        Assert.Equal(DataFixture.MailsPerClass, mails.Count(m => m.Spam));
        Assert.All(mails, m => Assert.InRange(m.Text.Length, 1, DataFixture.LongestMail));

        var speeches = DataFixture.StateOfTheUnion();
        Assert.Equal(DataFixture.Speeches, speeches.Count);
        Assert.Equal(speeches.Select(s => s.Year).Order(), speeches.Select(s => s.Year));
        Assert.Equal(1790, speeches[0].Year);
        Assert.All(speeches, s => Assert.InRange(s.Text.Length, 1000, DataFixture.SpeechCharacters));
    }

    [Fact]
    public void An_altered_fixture_file_is_rejected_naming_it()
    {
        var copy = Directory.CreateTempSubdirectory("fastnotebooks-fixture-").FullName;
        try
        {
            foreach (var file in DataFixture.Files)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(copy, file.RelativePath))!);
                File.Copy(Path.Combine(DataFixture.Root, file.RelativePath), Path.Combine(copy, file.RelativePath));
            }
            Assert.Equal(copy, DataFixture.Verify(copy, DataFixture.Files));

            var labels = Path.Combine(copy, DataFixture.MnistFiles[1].RelativePath);
            var bytes = File.ReadAllBytes(labels);
            bytes[^1] ^= 1;
            File.WriteAllBytes(labels, bytes);
            var error = Assert.Throws<InvalidDataException>(() => DataFixture.Verify(copy, DataFixture.Files));
            Assert.Contains(DataFixture.MnistFiles[1].RelativePath, error.Message);
            Assert.True(File.Exists(labels), "a fixture file is never deleted: it cannot be fetched again");
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    /// <summary>The generator: needs the fetched datasets in the cache (data/ or FASTNOTEBOOKS_DATA), skipped without them.</summary>
    [SkippableFact]
    public void Cutting_the_fetched_data_again_gives_the_fixture_byte_for_byte()
    {
        var sources = Datasets.MnistFiles.Append(Datasets.MobyDickFile).Append(Datasets.SpamAssassinFile).Append(Datasets.StateOfTheUnionFile);
        Skip.IfNot(Datasets.IsCached(sources),
            $"the fetched datasets are not cached in {DataCache.Root}: fetch them first (data/fixture/README.md) to check the fixture's generator.");
        bool write = Environment.GetEnvironmentVariable(WriteVariable) == "1";
        var destination = write ? Path.Combine(DataCache.RepositoryRoot, DataFixture.Folder) : Directory.CreateTempSubdirectory("fastnotebooks-fixture-").FullName;
        try
        {
            DataFixture.Cut(DataCache.Root, destination);
            foreach (var file in DataFixture.Files)
                log.WriteLine($"{file.RelativePath} {new FileInfo(Path.Combine(destination, file.RelativePath)).Length} bytes, SHA-256 {DataCache.Sha256(Path.Combine(destination, file.RelativePath))}");
            DataFixture.Verify(destination, DataFixture.Files);
        }
        finally
        {
            if (!write) Directory.Delete(destination, recursive: true);
        }
    }
}
