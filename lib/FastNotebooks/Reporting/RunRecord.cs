using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using FastNotebooks.Data;

namespace FastNotebooks.Reporting;

/// <summary>
/// The record of one notebook run, written at its end to <c>results/&lt;notebook&gt;/&lt;profile&gt;.json</c> at the
/// repository root (atomically): <c>provenance</c> (commit, date, machine, profile, seconds, seeds), <c>claims</c> (each
/// claim of the paper with what was measured, its threshold or tolerance and whether it holds) and <c>metrics</c> (the
/// tables and downsampled curves the figures show). Notebooks render measured numbers from these records, never type
/// them; <see cref="RecordedRuns"/> reads them back.
/// </summary>
public sealed class RunRecord
{
    /// <summary>Folder of the records under the repository root.</summary>
    public const string Folder = "results";

    /// <summary>Curves are stored with at most this many points (evenly thinned, the last point kept).</summary>
    public const int CurvePoints = 200;

    readonly Stopwatch clock = Stopwatch.StartNew();
    readonly List<ClaimRecord> claims = new();
    readonly JsonObject metrics = new();

    public string Notebook { get; }
    public string Profile { get; }
    public IReadOnlyList<long> Seeds { get; }
    public IReadOnlyList<ClaimRecord> Claims => claims;

    RunRecord(string notebook, string profile, IReadOnlyList<long> seeds)
    {
        if (string.IsNullOrWhiteSpace(notebook) || notebook.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
            throw new ArgumentException($"notebook must be a plain name such as '04-mnist'; got '{notebook}'.", nameof(notebook));
        Notebook = notebook;
        Profile = Training.Profiles.Parse(profile).ToString().ToLowerInvariant();
        Seeds = seeds;
    }

    /// <summary>Starts the record (and its clock) of a run of <paramref name="notebook"/> under <paramref name="profile"/>.</summary>
    public static RunRecord Start(string notebook, string profile, params long[] seeds) => new(notebook, profile, seeds);

    /// <summary>
    /// Records a claim of the paper and returns its verdict: <paramref name="measured"/> compared with
    /// <paramref name="threshold"/> by <paramref name="comparison"/>. A claim that does not hold is a result, not an error.
    /// </summary>
    /// <param name="claim">What the paper claims, in words ("Fastmax p = 2 within 1.5 points of softmax").</param>
    /// <param name="measured">The measured quantity the claim is decided on.</param>
    /// <param name="comparison">How measured must relate to threshold.</param>
    /// <param name="threshold">The limit (for <see cref="Comparison.Within"/>: the tolerance on |measured|).</param>
    /// <param name="unit">Unit shown after the numbers ("points", "nats", "×").</param>
    /// <param name="paper">The paper's value, where the paper or its notes give one.</param>
    /// <param name="decidable">False when the run did not reach the regime the claim needs (e.g. the models did not learn the
    /// task): the claim is recorded as undecided rather than as holding or not.</param>
    public Verdict Claim(string claim, double measured, Comparison comparison, double threshold, string unit = "", string? paper = null, bool decidable = true)
    {
        bool holds = decidable && !double.IsNaN(measured) && comparison switch
        {
            Comparison.AtLeast => measured >= threshold,
            Comparison.AtMost => measured <= threshold,
            Comparison.Within => Math.Abs(measured) <= threshold,
            _ => throw new ArgumentOutOfRangeException(nameof(comparison), comparison, "unknown comparison"),
        };
        var record = new ClaimRecord(claim, measured, comparison, threshold, unit, holds, paper, decidable);
        claims.RemoveAll(c => c.Claim == claim);   // a re-run cell replaces its claim
        claims.Add(record);
        return new Verdict(record, Profile);
    }

    /// <summary>Stores a table or value under <paramref name="name"/> (serialized as JSON; replaces an earlier one).</summary>
    public void Metric(string name, object? value) =>
        metrics[name] = JsonSerializer.SerializeToNode(value, value?.GetType() ?? typeof(object), Json);

    /// <summary>Stores a curve (x, y) thinned to at most <see cref="CurvePoints"/> points.</summary>
    public void Curve(string name, IEnumerable<double> x, IEnumerable<double> y)
    {
        var points = x.Zip(y, (a, b) => new[] { a, b }).ToList();
        Metric(name, Thin(points, CurvePoints));
    }

    /// <summary>Every k-th item and the last one, k chosen so that at most <paramref name="max"/> are kept.</summary>
    public static IReadOnlyList<T> Thin<T>(IReadOnlyList<T> items, int max)
    {
        if (items.Count <= max) return items;
        if (max < 2) throw new ArgumentOutOfRangeException(nameof(max), max, "must keep at least the first and the last item.");
        int stride = (items.Count - 1 + max - 2) / (max - 1);   // ⌈(n − 1)/(max − 1)⌉: with the last item, at most max kept
        var kept = items.Where((_, i) => i % stride == 0).ToList();
        if ((items.Count - 1) % stride != 0) kept.Add(items[^1]);
        return kept;
    }

    /// <summary>Writes the record (temporary file, then rename) and returns its path.</summary>
    public string Save(string? root = null)
    {
        var document = new JsonObject
        {
            ["provenance"] = JsonSerializer.SerializeToNode(new Provenance(
                GitCommit(), DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                MachineInfo.Current(), Profile, Math.Round(clock.Elapsed.TotalSeconds, 1), Seeds), Json),
            ["claims"] = JsonSerializer.SerializeToNode(claims, Json),
            ["metrics"] = metrics.DeepClone(),
        };
        var folder = Directory.CreateDirectory(Path.Combine(root ?? DataCache.RepositoryRoot, Folder, Notebook)).FullName;
        var path = Path.Combine(folder, Profile + ".json");
        File.WriteAllText(path + ".partial", document.ToJsonString(Json));
        File.Move(path + ".partial", path, overwrite: true);
        return path;
    }

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>The checked-out commit (short hash, "+dirty" when the tree has changes), or "unknown" without git.</summary>
    public static string GitCommit()
    {
        string? Git(string arguments)
        {
            try
            {
                using var process = Process.Start(new ProcessStartInfo("git", arguments)
                {
                    RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = DataCache.RepositoryRoot,
                });
                if (process is null) return null;
                var text = process.StandardOutput.ReadToEnd().Trim();
                process.WaitForExit();
                return process.ExitCode == 0 ? text : null;
            }
            catch (System.ComponentModel.Win32Exception) { return null; }
        }
        var commit = Git("rev-parse --short=12 HEAD");
        if (commit is null) return "unknown";
        var changes = Git("status --porcelain --untracked-files=no -- lib notebooks");
        return string.IsNullOrEmpty(changes) ? commit : commit + "+dirty";
    }
}

/// <summary>How a measured value must relate to the threshold for a claim to hold.</summary>
public enum Comparison { AtLeast, AtMost, Within }

/// <summary>One claim as recorded.</summary>
public sealed record ClaimRecord(string Claim, double Measured, Comparison Comparison, double Threshold, string Unit, bool Holds, string? Paper, bool Decided = true)
{
    /// <summary>"holds", "does not hold" or "undecided".</summary>
    public string Outcome => !Decided ? "undecided" : Holds ? "holds" : "does not hold";

    /// <summary>"≥ 95", "≤ 1.8", "within ±1.5".</summary>
    public string Requirement => Comparison switch
    {
        Comparison.AtLeast => $"≥ {Check.Format(Threshold)}",
        Comparison.AtMost => $"≤ {Check.Format(Threshold)}",
        _ => $"within ±{Check.Format(Threshold)}",
    } + (Unit.Length > 0 ? " " + Unit : "");

    public string MeasuredText => Check.Format(Measured) + (Unit.Length > 0 ? " " + Unit : "");
}

/// <summary>The verdict on one claim at one profile, displayed as markdown.</summary>
public sealed record Verdict(ClaimRecord Record, string Profile)
{
    public bool Holds => Record.Holds;

    public string Text => $"**{Record.Outcome}** at profile `{Profile}`: {Record.Claim} — measured {Record.MeasuredText}, required {Record.Requirement}" +
        (Record.Decided ? "" : " (the run did not reach the regime this claim needs)") + (Record.Paper is { } paper ? $" (paper: {paper})" : "");

    public override string ToString() => Text;
}

/// <summary>Where and how a record was made.</summary>
public sealed record Provenance(string Commit, string Date, MachineInfo Machine, string Profile, double Seconds, IReadOnlyList<long> Seeds);

/// <summary>The machine a record was made on.</summary>
public sealed record MachineInfo(string Cpu, int Cores, int TorchThreads)
{
    public static MachineInfo Current()
    {
        string cpu = "unknown";
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))
                    ?.Split(':', 2)[1].Trim() ?? cpu;
        }
        catch (IOException) { }
        return new MachineInfo(cpu, Environment.ProcessorCount, TorchSharp.torch.get_num_threads());
    }

    public override string ToString() => $"{Cpu}, {Cores} cores, {TorchThreads} libtorch threads";
}
