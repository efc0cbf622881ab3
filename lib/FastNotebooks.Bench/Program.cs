using System.Globalization;
using System.Text.Json;
using FastNotebooks.Bench;
using Spectre.Console;
using FastNotebooks.Attention.Fastmax.Cpu;
using static TorchSharp.torch;

// Fastmax vs SDPA vs the dense reference: forward, forward + backward, GFLOP/s against a same-run GEMM, peak memory.
// Then generation per token, the char-LM training step and the FMA-peak roofline (ModelBench.cs).
// Usage: dotnet run -c Release --project lib/FastNotebooks.Bench -- [--quick | --full] [--threads N] [--out artifacts/bench]
//        [--sections kernels,generation,training,roofline,stages] (default: all; without kernels, roofline measures the peak and thread scaling only;
//        stages profiles the unmet kernel targets' cases piece by piece)
//        [--compare BEFORE_DIR AFTER_DIR [--seconds S]]: two builds' Fastmax cases side by side instead (BuildComparison.cs)
FastNotebooks.OpenMpSpin.Apply();   // before libtorch loads (libgomp reads it then)
var profile = args.Contains("--full") ? BenchProfile.Full : BenchProfile.Quick;
string? Value(string name) => Array.IndexOf(args, name) is int i && i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
var outDir = Value("--out") ?? Path.Combine("artifacts", "bench");
var unknown = args.Where(a => a.StartsWith("--") && a is not ("--quick" or "--full" or "--out" or "--threads" or "--sections" or "--compare" or "--seconds")).ToList();
if (unknown.Count > 0) { Console.Error.WriteLine($"unknown option(s): {string.Join(", ", unknown)}; use --quick, --full, --threads N, --out DIR, --sections LIST, --compare BEFORE AFTER, --seconds S"); return 2; }
var sections = (Value("--sections") ?? "kernels,generation,training,roofline,stages").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToHashSet();
if (sections.Except(new[] { "kernels", "generation", "training", "roofline", "stages" }).FirstOrDefault() is string section)
{ Console.Error.WriteLine($"unknown section '{section}'; known: kernels, generation, training, roofline, stages"); return 2; }
// On a shared machine, libtorch's threads wait on each other behind other processes; --threads 1 gives steadier ratios.
if (Value("--threads") is string threads) set_num_threads(int.Parse(threads, CultureInfo.InvariantCulture));
if (Console.IsOutputRedirected || AnsiConsole.Profile.Width < 140) AnsiConsole.Profile.Width = 160;
if (Array.IndexOf(args, "--compare") is int compareAt && compareAt >= 0)
{
    if (compareAt + 2 >= args.Length || args[compareAt + 1].StartsWith("--") || args[compareAt + 2].StartsWith("--"))
    { Console.Error.WriteLine("--compare takes two folders, each holding a built FastNotebooks.dll: --compare BEFORE_DIR AFTER_DIR"); return 2; }
    double seconds = 10;
    if (Value("--seconds") is string s && !(double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out seconds) && seconds > 0))
    { Console.Error.WriteLine($"--seconds must be a positive number of seconds; got '{s}'"); return 2; }
    CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
    return BuildComparison.Run(args[compareAt + 1], args[compareAt + 2], seconds, profile, outDir);
}

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var started = DateTime.UtcNow;
AnsiConsole.MarkupLine($"[bold]Fastmax bench[/] profile={profile.Name}, libtorch threads={get_num_threads()}");

bool kernels = sections.Contains("kernels");
var checks = kernels ? AttentionBench.CheckCorrectness() : new List<CheckRow>();
var gemmBefore = Roofline.MeasureGemmGflops(best: true);
AnsiConsole.MarkupLine($"GEMM 2048³ fp32: {gemmBefore:F1} GFLOP/s");
// The roofline is the better of two GEMM measurements, before and after: on a shared machine that is the fairer bar.
var bench = new AttentionBench(profile, gemmBefore, line => AnsiConsole.MarkupLine($"[grey]  {Markup.Escape(line)}[/]"));
var rows = kernels ? bench.Run() : new List<BenchRow>();
var gemmAfter = Roofline.MeasureGemmGflops(best: true);
double gemm = Math.Max(gemmBefore, gemmAfter);
var tiles = Roofline.MeasureTileGflops();
rows = rows.Select(r => r with { FractionOfGemm = r.Gflops / gemm }).ToList();
var targets = Targets.Evaluate(rows);

var checkTable = new Table().AddColumns("correctness re-check", "output rel. err", "max grad rel. err", "ok");
foreach (var c in checks) checkTable.AddRow(c.Case, $"{c.OutputRelativeError:E1}", $"{c.GradientRelativeError:E1}", c.Passed ? "[green]yes[/]" : "[red]NO[/]");
AnsiConsole.Write(checkTable);

var table = new Table().AddColumns("impl", "N", "D", "p", "causal", "B·H", "fwd ms", "(median)", "fwd+bwd ms", "(median)", "fb/f", "GFLOP/s", "% GEMM", "peak ΔMB", "× SDPA");
foreach (var r in rows)
    table.AddRow(r.Implementation, $"{r.N}", $"{r.D}", $"{r.Order}", r.Causal ? "yes" : "", $"{r.BatchHeads}", $"{r.ForwardMs:F2}", $"{r.ForwardMedianMs:F2}",
        r.ForwardBackwardMs is double fb ? $"{fb:F2}" : "–", r.ForwardBackwardMedianMs is double fbm ? $"{fbm:F2}" : "–",
        r.ForwardBackwardMs is double fb2 ? $"{fb2 / r.ForwardMs:F2}" : "–",
        $"{r.Gflops:F1}", $"{100 * r.FractionOfGemm:F0}", r.PeakGrowthMb is double m ? $"{m:F0}" : "–",
        r.SpeedupOverSoftmax is double s ? $"{s:F1}" : "–");
AnsiConsole.Write(table);
AnsiConsole.MarkupLine($"Times are the fastest of {profile.Repeats} repeats, or of as many as fill {AttentionBench.SampleBudgetMs:F0} ms (at most {AttentionBench.MaximumRepeats}), medians beside them; forward and forward + backward alternate call by call; ratios, GFLOP/s and targets use the fastest.");
AnsiConsole.MarkupLine($"GEMM roofline (libtorch, 2048³, fastest of 5): {gemmBefore:F1} GFLOP/s before, {gemmAfter:F1} after; fractions use {gemm:F1}. Fastmax GFLOP/s count 4·N·F·(Dv+1), SDPA 4·N²·D (half causal).");
AnsiConsole.MarkupLine(Markup.Escape(tiles is double tileRate
    ? $"AVX-512 tiles (SimdGemm, the Fastmax kernels' float32 GEMMs) on the chunk product [820 × 561]·[561 × 32]: {tileRate:F1} GFLOP/s, {tileRate / gemm:F2}× libtorch's 2048³ rate."
    : "No AVX-512 on this CPU: the Fastmax kernels use libtorch's GEMMs."));

var targetTable = new Table().AddColumns("target", "measured", "met");
foreach (var t in targets) targetTable.AddRow(Markup.Escape(t.Target), Markup.Escape(t.Measured), t.Met ? "[green]yes[/]" : "[red]no[/]");
AnsiConsole.Write(targetTable);

void Log(string line) => AnsiConsole.MarkupLine($"[grey]  {Markup.Escape(line)}[/]");
var sizes = ModelBenchSizes.For(profile);
var generation = sections.Contains("generation") ? ModelBench.Generation(sizes, Log) : default;
var training = sections.Contains("training") ? ModelBench.Training(sizes, Log) : default;
var roofline = sections.Contains("roofline") ? ModelBench.Roofline(rows, gemm, Log) : default;
var stages = sections.Contains("stages") ? ModelBench.Stages(roofline.PeakOne ?? FmaPeak.Measure(1), Log) : null;
var moreTargets = new[] { generation.Targets, training.Targets, roofline.Targets }.Where(t => t is not null).SelectMany(t => t!).ToList();
if (moreTargets.Count > 0)
{
    var more = new Table().AddColumns("target (generation, model, roofline)", "measured", "met");
    foreach (var t in moreTargets) more.AddRow(Markup.Escape(t.Target), Markup.Escape(t.Measured), t.Met ? "[green]yes[/]" : "[red]no[/]");
    AnsiConsole.Write(more);
}

Directory.CreateDirectory(outDir);
string stamp = started.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
var report = new { profile = profile.Name, started, seconds = (DateTime.UtcNow - started).TotalSeconds, threads = get_num_threads(), gemmGflops = new { before = gemmBefore, after = gemmAfter, used = gemm }, tileGflops = tiles, checks, rows, targets,
    generation = generation.Rows, training = training.Rows,
    roofline = roofline.Rows is null ? null : new { fmaPeakOneThread = roofline.PeakOne, fmaPeak = roofline.PeakThreads, rows = roofline.Rows, threadScaling = roofline.Scaling },
    modelTargets = moreTargets, stages };
string json = Path.Combine(outDir, $"bench-{profile.Name}-{stamp}.json");
File.WriteAllText(json, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
string csv = Path.Combine(outDir, $"bench-{profile.Name}-{stamp}.csv");
File.WriteAllLines(csv, rows.Select(r => string.Join(",", r.Implementation, r.N, r.D, r.Order, r.Causal, r.BatchHeads, r.ForwardMs, r.ForwardBackwardMs, r.Gflops, r.FractionOfGemm, r.PeakGrowthMb, r.SpeedupOverSoftmax, r.ForwardMedianMs, r.ForwardBackwardMedianMs))
    .Prepend("implementation,n,d,order,causal,batch_heads,forward_ms,forward_backward_ms,gflops,fraction_of_gemm,peak_growth_mb,speedup_over_sdpa,forward_median_ms,forward_backward_median_ms"));
if (generation.Rows is { } g)
    File.WriteAllLines(Path.Combine(outDir, $"generation-{profile.Name}-{stamp}.csv"), g.Select(r => string.Join(",", r.Scope, r.Method, r.Context, r.TokenMs, r.TokenMedianMs, r.TokensPerSecond, r.StateBytesPerSequence))
        .Prepend("scope,method,context,token_ms,token_median_ms,tokens_per_second,state_bytes_per_sequence"));
if (training.Rows is { } tr)
    File.WriteAllLines(Path.Combine(outDir, $"training-{profile.Name}-{stamp}.csv"), tr.Select(r => string.Join(",", r.Attention, r.Context, r.Batch, r.StepMs, r.StepMedianMs, r.AttentionMs, r.AttentionFraction))
        .Prepend("attention,context,batch,step_ms,step_median_ms,attention_ms,attention_fraction"));
if (stages is { } st)
    File.WriteAllLines(Path.Combine(outDir, $"stages-{profile.Name}-{stamp}.csv"), st.Select(r => string.Join(",", Csv(r.Case), r.Pass, Csv(r.Stage), r.Calls, r.Ms, r.Share, r.Gflops, r.FractionOfPeak))
        .Prepend("case,pass,stage,calls,ms,share,gflops,fraction_of_peak"));
AnsiConsole.MarkupLine($"wrote {Markup.Escape(json)} and {Markup.Escape(csv)} in {(DateTime.UtcNow - started).TotalSeconds:F0} s");
// A field with a comma or a quote, quoted (RFC 4180): the stage names carry commas.
static string Csv(string field) => field.Contains(',') || field.Contains('"') ? $"\"{field.Replace("\"", "\"\"")}\"" : field;
return checks.All(c => c.Passed) ? 0 : 1;
