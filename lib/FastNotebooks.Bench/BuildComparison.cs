using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.Loader;
using System.Text.Json;
using Spectre.Console;
using static TorchSharp.torch;

namespace FastNotebooks.Bench;

/// <summary>
/// Two builds of the library side by side in one process (<c>--compare BEFORE AFTER</c>, each the folder of a built
/// FastNotebooks.dll): the Fastmax cases of a profile, called through each build's functional entry point on the same inputs,
/// one call of each build per round with the order swapped every round. Reports each side's fastest call and the paired
/// after/before ratios (<see cref="PairedRatios"/>), which separate a change in the code from a change in the machine.
/// </summary>
static class BuildComparison
{
    public static int Run(string beforeDir, string afterDir, double seconds, BenchProfile profile, string outDir)
    {
        var builds = new[] { Build.Load("before", beforeDir), Build.Load("after", afterDir) };
        var started = DateTime.UtcNow;
        AnsiConsole.MarkupLine($"[bold]Fastmax build comparison[/] profile={profile.Name}, libtorch threads={get_num_threads()}, about {seconds:F0} s per case and build");
        foreach (var b in builds) AnsiConsole.MarkupLine(Markup.Escape($"  {b.Name}: {b.Entry} from {b.Location}"));
        var rows = new List<ComparisonRow>();
        foreach (var c in profile.Cases)
        {
            AnsiConsole.MarkupLine(Markup.Escape($"  {c}"));
            rows.Add(Compare(builds, c, AttentionBench.TimesBackward(profile, c), seconds));
        }
        Directory.CreateDirectory(outDir);
        string path = Path.Combine(outDir, $"compare-{profile.Name}-{started.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}.json");
        File.WriteAllText(path, JsonSerializer.Serialize(new
        {
            profile = profile.Name, started, seconds = (DateTime.UtcNow - started).TotalSeconds, threads = get_num_threads(),
            before = new { beforeDir, builds[0].Location }, after = new { afterDir, builds[1].Location }, rows,
        }, new JsonSerializerOptions { WriteIndented = true }));
        AnsiConsole.MarkupLine(Markup.Escape($"wrote {path}"));
        var table = new Table().AddColumns("case", "fwd before", "fwd after", "Δ fastest", "paired Δ fwd [[95 % CI]]",
            "fwd+bwd before", "fwd+bwd after", "Δ fastest", "paired Δ fwd+bwd [[95 % CI]]", "rounds");
        static string Delta(double before, double after) => PairedRatios.Percent(after / before) + " %";
        foreach (var r in rows)
            table.AddRow(new[] { r.Case, $"{r.Forward.Before:F2}", $"{r.Forward.After:F2}", Delta(r.Forward.Before, r.Forward.After), $"{r.Forward.Paired}",
                r.ForwardBackward is { } fb ? $"{fb.Before:F2}" : "–", r.ForwardBackward is { } fb2 ? $"{fb2.After:F2}" : "–",
                r.ForwardBackward is { } fb3 ? Delta(fb3.Before, fb3.After) : "–", r.ForwardBackward is { } fb4 ? $"{fb4.Paired}" : "–", $"{r.Rounds}" }.Select(cell => new Markup(Markup.Escape(cell))).ToArray());
        AnsiConsole.Write(table);
        var all = rows.SelectMany(r => r.ForwardBackward is { } fb ? new[] { r.Forward, fb } : new[] { r.Forward }).ToList();
        AnsiConsole.MarkupLine(Markup.Escape($"Times in ms. Largest median change {PairedRatios.Percent(all.Max(t => t.Paired.Median))} %, largest upper end of an interval " +
            $"{PairedRatios.Percent(all.Max(t => t.Paired.Upper))} %; fastest against fastest {PairedRatios.Percent(all.Max(t => t.After / t.Before))} %."));
        return 0;
    }

    /// <summary>One build's and the other's times of one case: the fastest call of each and the paired ratios.</summary>
    public sealed record Side(double Before, double After, PairedRatios Paired);

    public sealed record ComparisonRow(string Case, int N, int D, int Order, bool Causal, int BatchHeads, Side Forward, Side? ForwardBackward, int Rounds);

    static ComparisonRow Compare(Build[] builds, BenchCase c, bool backward, double seconds)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(17);
        long[] shape = { c.Batch, c.Heads, c.N, c.D };
        var (q, k, v) = (randn(shape, generator: generator), randn(shape, generator: generator), randn(shape, generator: generator));
        var weights = randn(shape, generator: generator);
        var leaves = new[] { q, k, v }.Select(t => t.detach().requires_grad_()).ToArray();
        double Forward(Build b)
        {
            var clock = Stopwatch.StartNew();
            using (no_grad()) using (b.Attention(q, k, v, c.Order, c.Causal)) { }
            return clock.Elapsed.TotalMilliseconds;
        }
        double ForwardBackward(Build b)
        {
            var clock = Stopwatch.StartNew();
            FastNotebooks.Bench.ForwardBackward.Run((q, k, v) => b.Attention(q, k, v, c.Order, c.Causal), leaves, weights);
            return clock.Elapsed.TotalMilliseconds;
        }
        for (int warm = 0; warm < 2; warm++)
            foreach (var b in builds) { Forward(b); if (backward) ForwardBackward(b); }
        var times = new List<double>[2, 2];
        for (int i = 0; i < 2; i++) for (int j = 0; j < 2; j++) times[i, j] = new List<double>();
        var total = Stopwatch.StartNew();
        int rounds = 0;
        for (; rounds < MinimumRounds || (rounds < MaximumRounds && total.Elapsed.TotalSeconds < 2 * seconds); rounds++)
            for (int turn = 0; turn < 2; turn++)
            {
                int i = (rounds + turn) % 2;
                times[i, 0].Add(Forward(builds[i]));
                if (backward) times[i, 1].Add(ForwardBackward(builds[i]));
            }
        Side SideOf(int j) => new(times[0, j].Min(), times[1, j].Min(), PairedRatios.Of(times[1, j].Zip(times[0, j], (a, b) => a / b).ToList()));
        return new ComparisonRow(c.ToString(), c.N, c.D, c.Order, c.Causal, c.BatchHeads, SideOf(0), backward ? SideOf(1) : null, rounds);
    }

    const int MinimumRounds = 7, MaximumRounds = 200;

    /// <summary>One build, loaded in a context of its own; TorchSharp is shared with this process.</summary>
    sealed class Build
    {
        readonly MethodInfo _attention;
        readonly Type _options;
        readonly Dictionary<(int, bool), object> _made = new();

        Build(string name, MethodInfo attention, Type options, string location) => (Name, _attention, _options, Location) = (name, attention, options, location);

        public string Name { get; }
        public string Location { get; }
        public string Entry => $"{_attention.DeclaringType!.FullName}.{_attention.Name}";

        public static Build Load(string name, string dir)
        {
            string path = Path.Combine(dir, "FastNotebooks.dll");
            if (!File.Exists(path)) throw new ArgumentException($"--compare: no FastNotebooks.dll in the {name} folder '{dir}'", nameof(dir));
            var assembly = new Context(dir).LoadFromAssemblyPath(Path.GetFullPath(path));
            var options = assembly.GetType("FastNotebooks.Attention.Fastmax.FastmaxOptions")
                ?? throw new ArgumentException($"--compare: the {name} build '{dir}' has no FastmaxOptions", nameof(dir));
            // The functional entry point; builds before its rename called it Fastmax.Attention.
            var type = assembly.GetType("FastNotebooks.Attention.Fastmax.FastmaxFunctional") ?? assembly.GetType("FastNotebooks.Attention.Fastmax.Fastmax")
                ?? throw new ArgumentException($"--compare: the {name} build '{dir}' has no Fastmax entry point", nameof(dir));
            var attention = type.GetMethods().Single(m => m.Name == "Attention" && m.GetParameters().Length == 5);
            return new Build(name, attention, options, assembly.Location);
        }

        public Tensor Attention(Tensor q, Tensor k, Tensor v, int order, bool causal)
        {
            if (!_made.TryGetValue((order, causal), out var options))
            {
                options = Activator.CreateInstance(_options)!;
                _options.GetProperty("Order")!.SetValue(options, order);
                _options.GetProperty("Causal")!.SetValue(options, causal);
                _made[(order, causal)] = options;
            }
            return (Tensor)_attention.Invoke(null, new object?[] { q, k, v, options, false })!;
        }
    }

    /// <summary>Resolves the build's own assemblies from its folder and everything this process already has (TorchSharp) from here.</summary>
    sealed class Context(string dir) : AssemblyLoadContext(isCollectible: false)
    {
        protected override Assembly? Load(AssemblyName name)
        {
            string own = Path.Combine(dir, name.Name + ".dll");
            if (name.Name == "FastNotebooks") return LoadFromAssemblyPath(Path.GetFullPath(own));
            bool here = File.Exists(Path.Combine(AppContext.BaseDirectory, name.Name + ".dll"));
            return !here && File.Exists(own) ? LoadFromAssemblyPath(Path.GetFullPath(own)) : null;
        }
    }
}
