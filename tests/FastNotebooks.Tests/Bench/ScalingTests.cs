using FastNotebooks.Bench;
using FastNotebooks.Training;

namespace FastNotebooks.Tests.Bench;

public class ScalingTests
{
    const ScalingImplementation F1 = ScalingImplementation.Fastmax1;
    const ScalingImplementation F2 = ScalingImplementation.Fastmax2;
    const ScalingImplementation Sdpa = ScalingImplementation.Softmax;

    static ScalingPoint Point(ScalingImplementation implementation, int n, double? ms, int d = 16, bool overBudget = false) =>
        new(implementation, ScalingPass.Forward, d, n, ms, null, null, null, overBudget, null);

    [Theory]
    [InlineData(1.0)]
    [InlineData(2.0)]
    [InlineData(0.5)]
    public void Exact_power_law_gives_its_exponent(double exponent)
    {
        var points = new[] { 256, 512, 1024, 2048, 4096 }.Select(n => ((double)n, 3e-4 * Math.Pow(n, exponent))).ToList();
        var (slope, r2) = ScalingAnalysis.LogLogSlope(points);
        Assert.Equal(exponent, slope, 12);
        Assert.Equal(1.0, r2, 12);
    }

    [Fact]
    public void Slopes_use_the_larger_half_of_the_lengths()
    {
        // Constant overhead at small N (1 ms), then exactly linear and quadratic: the fit must see only the asymptotic part.
        var ns = new[] { 256, 512, 1024, 2048, 4096, 8192 };
        var points = ns.Select(n => Point(F2, n, n <= 1024 ? 1.0 : n / 1024.0))
            .Concat(ns.Select(n => Point(Sdpa, n, n <= 1024 ? 1.0 : Math.Pow(n / 1024.0, 2)))).ToList();
        var fits = ScalingAnalysis.FitSlopes(points);
        var fastmax = Assert.Single(fits, f => f.Implementation == F2);
        var softmax = Assert.Single(fits, f => f.Implementation == Sdpa);
        Assert.Equal((3, 2048, 8192), (fastmax.Points, fastmax.FromN, fastmax.ToN));
        Assert.Equal(1.0, fastmax.Slope, 12);
        Assert.Equal(2.0, softmax.Slope, 12);
    }

    [Fact]
    public void Slopes_ignore_points_over_budget()
    {
        var points = new[]
        {
            Point(Sdpa, 1024, 1), Point(Sdpa, 2048, 4), Point(Sdpa, 4096, 16),
            Point(Sdpa, 8192, null, overBudget: true), Point(Sdpa, 16384, null, overBudget: true),
        };
        var fit = Assert.Single(ScalingAnalysis.FitSlopes(points));
        Assert.Equal((2, 2048, 4096), (fit.Points, fit.FromN, fit.ToN));
        Assert.Equal(2.0, fit.Slope, 12);
    }

    [Fact]
    public void Crossover_is_where_fastmax_stays_faster()
    {
        // Fastmax wins once at 256 by noise, loses at 512 and 1024, then wins from 2048 on; softmax is over budget at 8192.
        var fastmax = new[] { (256, 0.9), (512, 2.0), (1024, 3.0), (2048, 3.5), (4096, 7.0), (8192, 14.0) };
        var softmax = new[] { (256, 1.0), (512, 1.5), (1024, 2.5), (2048, 5.0), (4096, 20.0) };
        var points = fastmax.Select(p => Point(F2, p.Item1, p.Item2)).Concat(softmax.Select(p => Point(Sdpa, p.Item1, p.Item2)))
            .Append(Point(Sdpa, 8192, null, overBudget: true)).ToList();

        var crossover = Assert.Single(ScalingAnalysis.FindCrossovers(points));
        Assert.Equal(2048, crossover.N);
        Assert.Equal(4096, crossover.LargestCommonN);
        Assert.Equal(20.0 / 7.0, crossover.SpeedupAtLargestCommonN, 12);
    }

    [Fact]
    public void No_crossover_when_fastmax_is_slower_at_the_largest_common_length()
    {
        var points = new[] { Point(F1, 256, 0.5), Point(F1, 512, 2.0), Point(Sdpa, 256, 1.0), Point(Sdpa, 512, 1.0) };
        var crossover = Assert.Single(ScalingAnalysis.FindCrossovers(points));
        Assert.Null(crossover.N);
        Assert.Equal(0.5, crossover.SpeedupAtLargestCommonN, 12);
    }

    [Fact]
    public void Roofline_fraction_is_taken_at_the_largest_length()
    {
        var points = new[]
        {
            Point(F2, 512, 1.0) with { Gflops = 5 }, Point(F2, 1024, 1.0) with { Gflops = 30 },
            Point(Sdpa, 1024, 1.0) with { Gflops = 80 },
        };
        var row = Assert.Single(ScalingAnalysis.RooflineFractions(points, gemmGflops: 60));
        Assert.Equal((F2, 1024), (row.Implementation, row.N));
        Assert.Equal(0.5, row.Fraction, 12);
    }

    [Fact]
    public void Smoke_sweep_measures_the_grid_and_skips_softmax_over_budget()
    {
        var settings = ScalingSettings.For(Profile.Smoke);
        var lines = new List<string>();
        int threadsBefore = TorchSharp.torch.get_num_threads();
        var result = Scaling.Run(settings, lines.Add, threads: 1);

        Assert.Equal(1, result.Threads);
        Assert.Equal(threadsBefore, TorchSharp.torch.get_num_threads());

        int passes = settings.HeadDims.Sum(d => settings.BackwardHeadDims.Contains(d) ? 2 : 1);
        Assert.Equal(passes * settings.Lengths.Count * 3, result.Points.Count);
        Assert.Equal(settings.HeadDims.Count * settings.Lengths.Count, lines.Count);
        foreach (var p in result.Points)
        {
            bool overBudget = p.Implementation == Sdpa && 4.0 * p.N * p.N > settings.SoftmaxBudgetBytes;
            Assert.Equal(overBudget, p.OverBudget);
            if (overBudget)
            {
                Assert.Null(p.Milliseconds);
                Assert.True(p.NominalMilliseconds > 0, $"over-budget point N={p.N} D={p.D} needs a nominal position");
            }
            else Assert.True(p.Milliseconds > 0, $"{p.Implementation} {p.Pass} N={p.N} D={p.D} has no positive time");
        }
        Assert.Contains(result.Points, p => p.OverBudget);
        Assert.Contains(result.Points, p => p.Pass == ScalingPass.ForwardBackward && p.Milliseconds > 0);
        // Every (implementation, pass, D) has at least two measured lengths, so each gets a fit.
        Assert.Equal(passes * 3, result.Fits.Count);
        Assert.Equal(settings.HeadDims.Count * 2, result.Roofline.Count);
        Assert.All(result.Roofline, r => Assert.True(r.Fraction > 0));
        Assert.True(result.GemmGflops > 0);
    }

    /// <summary>
    /// The method check times each of its shapes both ways: Fastmax of both orders at the two largest D and N of the profile, each a
    /// positive median, on the threads asked for and with the caller's threads restored; bad arguments are named.
    /// </summary>
    [Fact]
    public void Agreement_with_the_bench_times_each_shape_both_ways()
    {
        var settings = ScalingSettings.For(Profile.Smoke) with { Lengths = new[] { 64, 128, 256 }, HeadDims = new[] { 4, 8, 16 }, BackwardHeadDims = new[] { 8 } };
        int threadsBefore = TorchSharp.torch.get_num_threads();
        var rows = Scaling.AgreementWithBench(settings, threads: 1, benchRepeats: 2);
        Assert.Equal(threadsBefore, TorchSharp.torch.get_num_threads());
        var expected = new[] { F1, F2 }.SelectMany(i => new[] { 8, 16 }.SelectMany(d => new[] { 128, 256 }.Select(n => (i, d, n)))).ToList();
        Assert.Equal(expected, rows.Select(r => (r.Implementation, r.D, r.N)).ToList());
        Assert.All(rows, r => Assert.True(r.SweepMs > 0 && r.BenchMs > 0 && r.SweepOverBench == r.SweepMs / r.BenchMs, $"{r}"));
        Assert.Equal("threads", Assert.Throws<ArgumentException>(() => Scaling.AgreementWithBench(settings, threads: -1)).ParamName);
        Assert.Equal("benchRepeats", Assert.Throws<ArgumentException>(() => Scaling.AgreementWithBench(settings, benchRepeats: 0)).ParamName);
        Assert.Equal("Repeats", Assert.Throws<ArgumentException>(() => Scaling.AgreementWithBench(settings with { Repeats = 0 })).ParamName);
    }

    [Fact]
    public void Saved_tables_have_a_header_and_one_line_per_row()
    {
        var points = new[] { Point(F2, 256, 1.5), Point(Sdpa, 512, null, overBudget: true) };
        var result = new ScalingResult(ScalingSettings.For(Profile.Smoke), points, ScalingAnalysis.FitSlopes(points),
            ScalingAnalysis.FindCrossovers(points), ScalingAnalysis.RooflineFractions(points, 1), 1, 1);
        var folder = Path.Combine(Path.GetTempPath(), "scaling-tests-" + Guid.NewGuid().ToString("N"));
        try
        {
            var files = ScalingArtifacts.Save(result, folder);
            Assert.Equal(5, files.Count);
            var lines = File.ReadAllLines(Path.Combine(folder, "points.csv"));
            Assert.Equal(3, lines.Length);
            Assert.StartsWith("Implementation,Pass,D,N,Milliseconds", lines[0]);
            Assert.Equal("Fastmax2,Forward,16,256,1.5,,,,False,", lines[1]);
            Assert.Contains("\"Softmax\"", File.ReadAllText(Path.Combine(folder, "scaling.json")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Bad_settings_name_the_argument()
    {
        var good = ScalingSettings.For(Profile.Smoke);
        Assert.Equal("Lengths", Assert.Throws<ArgumentException>(() => (good with { Lengths = new[] { 64, 100 } }).Validate()).ParamName);
        Assert.Equal("Lengths", Assert.Throws<ArgumentException>(() => (good with { Lengths = new[] { 128, 64 } }).Validate()).ParamName);
        Assert.Equal("Lengths", Assert.Throws<ArgumentException>(() => (good with { Lengths = Array.Empty<int>() }).Validate()).ParamName);
        Assert.Equal("HeadDims", Assert.Throws<ArgumentException>(() => (good with { HeadDims = new[] { 0 } }).Validate()).ParamName);
        Assert.Equal("BackwardHeadDims", Assert.Throws<ArgumentException>(() => (good with { BackwardHeadDims = new[] { 64 } }).Validate()).ParamName);
        Assert.Equal("Repeats", Assert.Throws<ArgumentException>(() => (good with { Repeats = 0 }).Validate()).ParamName);
        Assert.Equal("SoftmaxBudgetBytes", Assert.Throws<ArgumentException>(() => (good with { SoftmaxBudgetBytes = 0 }).Validate()).ParamName);
        Assert.Equal("Lengths", Assert.Throws<ArgumentException>(() => Scaling.Run(good with { Lengths = new[] { 3 } }, _ => { })).ParamName);
        Assert.Equal("threads", Assert.Throws<ArgumentException>(() => Scaling.Run(good, _ => { }, threads: -1)).ParamName);
    }

    [Fact]
    public void Bad_fit_input_is_rejected()
    {
        Assert.Equal("points", Assert.Throws<ArgumentException>(() => ScalingAnalysis.LogLogSlope(new[] { (1.0, 1.0) })).ParamName);
        Assert.Equal("points", Assert.Throws<ArgumentException>(() => ScalingAnalysis.LogLogSlope(new[] { (1.0, 1.0), (2.0, 0.0) })).ParamName);
        Assert.Equal("points", Assert.Throws<ArgumentException>(() => ScalingAnalysis.LogLogSlope(new[] { (4.0, 1.0), (4.0, 2.0) })).ParamName);
        Assert.Equal("gemmGflops", Assert.Throws<ArgumentException>(() => ScalingAnalysis.RooflineFractions(Array.Empty<ScalingPoint>(), 0)).ParamName);
        Assert.Equal("from", Assert.Throws<ArgumentException>(() => ScalingSettings.PowersOfTwo(48, 256)).ParamName);
    }
}

public class ScalingComplexityTests
{
    static ComplexityPoint At(int x, double ms) => new(x, 64, x, 1, ms, ms, false);

    [Fact]
    public void A_point_five_times_off_both_neighbours_is_an_outlier()
    {
        var points = new[] { At(8, 1), At(16, 10), At(32, 1.5), At(64, 2) };
        Assert.True(ScalingComplexity.IsOutlier(points, 1));
        Assert.False(ScalingComplexity.IsOutlier(points, 2));   // off one neighbour only
        Assert.False(ScalingComplexity.IsOutlier(points, 3));
    }

    [Fact]
    public void Fit_recovers_a_power_law_over_the_larger_half()
    {
        // t = D³ above D = 16, flattened by overhead below: the larger-half fit sees the cube.
        var points = new[] { At(4, 100), At(8, 100), At(16, 4096), At(32, 32768), At(64, 262144) };
        var fit = ScalingComplexity.Fit("time vs D", 2, points, predicted: 3, largerHalf: true);
        Assert.Equal(3, fit.Slope, 9);
        Assert.Equal(16, fit.FromX);
        Assert.Equal(64, fit.ToX);
    }

    [Fact]
    public void Heads_must_divide_the_width()
    {
        var settings = new ComplexitySettings(64, new[] { 4 }, 64, 12, new[] { 1, 5 }, 1);
        var e = Assert.Throws<ArgumentException>(() => ScalingComplexity.HeadsSweep(settings, 1));
        Assert.Contains("Width", e.Message);
    }

    [Fact]
    public void Smoke_sweeps_time_every_point()
    {
        var settings = ComplexitySettings.For(FastNotebooks.Training.Profile.Smoke);
        var d = ScalingComplexity.HeadDimSweep(settings, 1);
        Assert.Equal(settings.HeadDims, d.Select(p => p.X).ToArray());
        Assert.All(d, p => Assert.True(p.Fastest > 0 && p.Fastest <= p.Median));
        var h = ScalingComplexity.HeadsSweep(settings, 2);
        Assert.Equal(settings.Heads.Select(x => settings.Width / x).ToArray(), h.Select(p => p.D).ToArray());
    }
}
