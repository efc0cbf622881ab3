using System.Text.Json;
using FastNotebooks.Reporting;

namespace FastNotebooks.Tests.Reporting;

public sealed class RunRecordTests : IDisposable
{
    readonly string root = Directory.CreateTempSubdirectory("fastnotebooks-results-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    [Fact]
    public void A_saved_record_has_provenance_claims_and_metrics_and_reads_back()
    {
        var ledger = RunRecord.Start("04-mnist", "quick", 7);
        var held = ledger.Claim("softmax above 95 %", 96.1, Comparison.AtLeast, 95, "%");
        var missed = ledger.Claim("fastmax2 within 1.5 points", -2.6, Comparison.Within, 1.5, "points", paper: "equal accuracy");
        ledger.Metric("accuracy", new[] { new { Attention = "softmax", TestAccuracy = 0.961 } });
        ledger.Curve("test accuracy/softmax", Enumerable.Range(0, 1000).Select(i => (double)i), Enumerable.Range(0, 1000).Select(i => i / 1000.0));
        var path = ledger.Save(root);

        Assert.Equal(Path.Combine(root, "results", "04-mnist", "quick.json"), path);
        Assert.True(held.Holds);
        Assert.False(missed.Holds);
        Assert.Contains("does not hold", missed.Text);
        using var json = JsonDocument.Parse(File.ReadAllText(path));
        var provenance = json.RootElement.GetProperty("provenance");
        foreach (var key in new[] { "commit", "date", "machine", "profile", "seconds", "seeds" })
            Assert.True(provenance.TryGetProperty(key, out _), $"provenance lacks {key}");
        Assert.Equal("quick", provenance.GetProperty("profile").GetString());
        Assert.Equal(7, provenance.GetProperty("seeds")[0].GetInt64());

        var back = Assert.Single(RecordedRuns.Of("04-mnist", root));
        Assert.Equal(2, back.Claims.Count);
        Assert.Equal(-2.6, back.Claims[1].Measured);
        Assert.Equal("equal accuracy", back.Claims[1].Paper);
        var (x, y) = back.Curve("test accuracy/softmax");
        Assert.InRange(x.Length, 2, RunRecord.CurvePoints);
        Assert.Equal(999, x[^1]);        // the last point survives thinning
        Assert.Equal(0.999, y[^1]);
        Assert.Single(back.Curves("test accuracy/"));
    }

    [Fact]
    public void A_claim_outside_its_regime_is_undecided_not_failed_or_held()
    {
        var ledger = RunRecord.Start("05-charlm", "smoke");
        var v = ledger.Claim("fastmax2 within 0.1 nats", 0.01, Comparison.Within, 0.1, "nats", decidable: false);
        Assert.False(v.Holds);
        Assert.Equal("undecided", v.Record.Outcome);
        Assert.Contains("undecided", v.Text);
    }

    [Fact]
    public void NaN_never_holds()
    {
        var ledger = RunRecord.Start("05-charlm", "quick");
        Assert.False(ledger.Claim("at most", double.NaN, Comparison.AtMost, 1).Holds);
        Assert.False(ledger.Claim("at least", double.NaN, Comparison.AtLeast, 1).Holds);
        Assert.False(ledger.Claim("within", double.NaN, Comparison.Within, 1).Holds);
    }

    [Fact]
    public void The_overview_takes_the_full_verdict_over_the_quick_one()
    {
        var quick = RunRecord.Start("04-mnist", "quick");
        quick.Claim("parity", -2.6, Comparison.Within, 1.5, "points");
        quick.Save(root);
        var full = RunRecord.Start("04-mnist", "full");
        full.Claim("parity", -0.4, Comparison.Within, 1.5, "points");
        full.Save(root);

        var row = Assert.Single(RecordedRuns.Overview(root));
        Assert.Equal("-2.6 points", row.Quick);
        Assert.Equal("-0.4 points", row.Full);
        Assert.Equal("full: holds", row.Verdict);
        Assert.Contains("| parity | within ±1.5 points | -2.6 points: does not hold | -0.4 points: holds |", RecordedRuns.Table("04-mnist", root: root).Text);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a/b")]
    public void A_notebook_name_with_a_path_is_rejected(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => RunRecord.Start(name, "quick"));
        Assert.Contains("notebook", e.Message);
    }

    [Fact]
    public void A_bad_profile_is_rejected_by_name() =>
        Assert.Contains("slow", Assert.Throws<ArgumentException>(() => RunRecord.Start("04-mnist", "slow")).Message);

    [Fact]
    public void A_malformed_record_names_its_file()
    {
        var folder = Directory.CreateDirectory(Path.Combine(root, "results", "06-dropout")).FullName;
        File.WriteAllText(Path.Combine(folder, "quick.json"), "{ not json");
        var e = Assert.Throws<InvalidDataException>(() => RecordedRuns.Of("06-dropout", root));
        Assert.Contains("quick.json", e.Message);
    }
}
