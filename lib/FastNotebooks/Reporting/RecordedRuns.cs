using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FastNotebooks.Data;

namespace FastNotebooks.Reporting;

/// <summary>A record read back from <c>results/&lt;notebook&gt;/&lt;profile&gt;.json</c>.</summary>
public sealed record RecordedRun(string Notebook, Provenance Provenance, IReadOnlyList<ClaimRecord> Claims, JsonObject Metrics)
{
    public string Profile => Provenance.Profile;

    /// <summary>One line: profile, date, commit, machine, seconds.</summary>
    public string ProvenanceLine =>
        $"`{Profile}` run of {Provenance.Date[..Math.Min(10, Provenance.Date.Length)]}, commit `{Provenance.Commit}`, {Provenance.Machine}, {Provenance.Seconds:F0} s";

    /// <summary>A metric deserialized as <typeparamref name="T"/>, or default when the record lacks it.</summary>
    public T? Metric<T>(string name) => Metrics[name] is { } node ? node.Deserialize<T>(RunRecord.Json) : default;

    /// <summary>Every curve whose name starts with <paramref name="prefix"/>: (name without the prefix, x, y).</summary>
    public IReadOnlyList<(string Name, double[] X, double[] Y)> Curves(string prefix) =>
        Metrics.Where(m => m.Key.StartsWith(prefix, StringComparison.Ordinal))
            .Select(m => { var (x, y) = Curve(m.Key); return (m.Key[prefix.Length..], x, y); }).ToList();

    /// <summary>A curve stored by <see cref="RunRecord.Curve"/>: its x and y values.</summary>
    public (double[] X, double[] Y) Curve(string name)
    {
        var points = Metric<double[][]>(name) ?? Array.Empty<double[]>();
        return (points.Select(p => p[0]).ToArray(), points.Select(p => p[1]).ToArray());
    }
}

/// <summary>Reads the recorded runs of the notebooks and renders them (per notebook, and the overview across notebooks).</summary>
public static class RecordedRuns
{
    static readonly string[] ProfileOrder = { "smoke", "quick", "full" };

    /// <summary>The records of <paramref name="notebook"/> (quick, then full; smoke records are not kept).</summary>
    public static IReadOnlyList<RecordedRun> Of(string notebook, string? root = null)
    {
        var folder = Path.Combine(root ?? DataCache.RepositoryRoot, RunRecord.Folder, notebook);
        if (!Directory.Exists(folder)) return Array.Empty<RecordedRun>();
        return Directory.GetFiles(folder, "*.json")
            .Where(path => Path.GetFileNameWithoutExtension(path) != "smoke")   // smoke records are the tests' scratch, not results
            .Select(path => Read(notebook, path))
            .OrderBy(r => Array.IndexOf(ProfileOrder, r.Profile))
            .ToList();
    }

    /// <summary>Every notebook that has records, in name order.</summary>
    public static IReadOnlyList<RecordedRun> All(string? root = null)
    {
        var folder = Path.Combine(root ?? DataCache.RepositoryRoot, RunRecord.Folder);
        if (!Directory.Exists(folder)) return Array.Empty<RecordedRun>();
        return Directory.GetDirectories(folder).OrderBy(d => d, StringComparer.Ordinal)
            .SelectMany(d => Of(Path.GetFileName(d), root)).ToList();
    }

    public static RecordedRun Read(string notebook, string path)
    {
        JsonObject document;
        try { document = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new InvalidDataException("empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{path} is not a results record: {e.Message}", e); }
        var provenance = document["provenance"].Deserialize<Provenance>(RunRecord.Json)
            ?? throw new InvalidDataException($"{path} has no provenance.");
        var claims = document["claims"].Deserialize<List<ClaimRecord>>(RunRecord.Json) ?? new List<ClaimRecord>();
        return new RecordedRun(notebook, provenance, claims, document["metrics"]?.AsObject() ?? new JsonObject());
    }

    /// <summary>
    /// The claims of one notebook as a markdown table: one column per recorded profile (measured value and verdict),
    /// with the live run's claims first when given, and each record's provenance below.
    /// </summary>
    public static Markdown Table(string notebook, RunRecord? live = null, string? root = null)
    {
        var recorded = Of(notebook, root);
        var columns = new List<(string Title, IReadOnlyList<ClaimRecord> Claims)>();
        if (live is not null) columns.Add(($"this run (`{live.Profile}`)", live.Claims));
        columns.AddRange(recorded.Select(r => ((string)$"recorded `{r.Profile}`", r.Claims)));
        var names = columns.SelectMany(c => c.Claims.Select(x => x.Claim)).Distinct().ToList();
        var text = new StringBuilder();
        if (names.Count == 0) return new Markdown($"No claims recorded for {notebook} yet.");
        text.AppendLine("| claim | required | " + string.Join(" | ", columns.Select(c => c.Title)) + " |");
        text.AppendLine("|---|---|" + string.Concat(columns.Select(_ => "---|")));
        foreach (var name in names)
        {
            var any = columns.SelectMany(c => c.Claims).First(c => c.Claim == name);
            text.Append($"| {name} | {any.Requirement} |");
            foreach (var (_, claims) in columns)
                text.Append(claims.FirstOrDefault(c => c.Claim == name) is { } c ? $" {c.MeasuredText}: {c.Outcome} |" : " — |");
            text.AppendLine();
        }
        text.AppendLine();
        foreach (var r in recorded) text.AppendLine($"- {r.ProvenanceLine}");
        if (recorded.Count == 0) text.AppendLine("- no recorded runs in `results/` yet");
        return new Markdown(text.ToString());
    }

    /// <summary>
    /// The overview across notebooks: claim, the paper's value, recorded quick, recorded full, verdict — as rows of
    /// plain strings (for the HTML index and the terminal).
    /// </summary>
    public static IReadOnlyList<OverviewRow> Overview(string? root = null)
    {
        var rows = new List<OverviewRow>();
        foreach (var group in All(root).GroupBy(r => r.Notebook))
        {
            var quick = group.FirstOrDefault(r => r.Profile == "quick");
            var full = group.FirstOrDefault(r => r.Profile == "full");
            var names = group.SelectMany(r => r.Claims.Select(c => c.Claim)).Distinct();
            foreach (var name in names)
            {
                var q = quick?.Claims.FirstOrDefault(c => c.Claim == name);
                var f = full?.Claims.FirstOrDefault(c => c.Claim == name);
                var decided = f ?? q!;
                rows.Add(new OverviewRow(group.Key, name, decided.Requirement, decided.Paper ?? "—",
                    q is null ? "—" : q.MeasuredText, f is null ? "—" : f.MeasuredText,
                    (f is null ? "quick: " : "full: ") + decided.Outcome, decided.Holds));
            }
        }
        return rows;
    }
}

/// <summary>One line of the results overview.</summary>
public sealed record OverviewRow(string Notebook, string Claim, string Required, string Paper, string Quick, string Full, string Verdict, bool Holds);
