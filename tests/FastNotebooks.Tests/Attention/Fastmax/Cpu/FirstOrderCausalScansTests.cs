using System.Runtime.Intrinsics;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Verification;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>The running-state scans of order-1 causal Fastmax against plain loops and against the chunked kernel in float64.</summary>
public unsafe class FirstOrderCausalScansTests
{
    /// <summary>
    /// <see cref="CausalScan.Product"/> over every panel and <see cref="CausalScan.Sums"/> against <see cref="CausalScan.Reference"/>
    /// and plain sums on the whole rows x′ = [scale·x, e^x], y′ = [y, e^y], both directions, one or two panels a pass, 80 random cases: 1 to 300 tokens,
    /// 8 to 48 state rows read from rows up to 9 floats wider, 16 to 48 columns, input scales 1e-3 to 1e3, the appended entries
    /// absent, constant or one per token.
    /// </summary>
    [Avx512Fact]
    public void Scan_equals_the_reference_loops()
    {
        var random = new Random(3);
        var generator = new Generator(4);
        for (int trial = 0; trial < 80; trial++)
        {
            using var scope = NewDisposeScope();
            int n = trial < 4 ? 1 : random.Next(1, 301);
            int rows = CausalScan.RowGroup * random.Next(1, 7), cols = CausalScan.Panel * random.Next(1, 4);
            int ldx = rows + (trial % 3 == 0 ? 0 : random.Next(1, 10)), ldy = rows + (trial % 4 == 0 ? 0 : random.Next(1, 10));
            bool reverse = trial % 2 == 1;
            int appended = trial % 3;   // 0: none, 1: constants, 2: one per token
            float factor = trial % 5 == 0 ? 1f : (float)(0.2 + random.NextDouble());
            double inputScale = Math.Pow(10, random.Next(-3, 4));
            var (x, y, w) = (randn(new long[] { n, ldx }, generator: generator) * inputScale, randn(new long[] { n, ldy }, generator: generator),
                randn(new long[] { n, cols }, generator: generator));
            var (ex, ey) = appended switch
            {
                0 => (zeros(n, 1), zeros(n, 1)),
                1 => (full(new long[] { n, 1 }, 0.5 + random.NextDouble()), full(new long[] { n, 1 }, -0.5 - random.NextDouble())),
                _ => (randn(new long[] { n, 1 }, generator: generator), randn(new long[] { n, 1 }, generator: generator)),
            };
            // The whole rows the reference reads.
            var xWhole = cat(new[] { x.narrow(1, 0, rows) * factor, ex }, 1).contiguous();
            var yWhole = cat(new[] { y.narrow(1, 0, rows), ey }, 1).contiguous();
            var (fast, reference) = (full(new long[] { n, cols }, float.NaN), zeros(n, cols));
            float* px = SimdGemm.Address(x), py = SimdGemm.Address(y), pw = SimdGemm.Address(w), pex = SimdGemm.Address(ex), pey = SimdGemm.Address(ey);
            var extra = appended == 0 ? CausalScan.Extra.None : new CausalScan.Extra(pex, appended == 1 ? 0 : 1, pey, appended == 1 ? 0 : 1);
            // Panels one at a time in odd trials, two at a time (and a last one alone) in even ones.
            int panels = cols / CausalScan.Panel, perPass = trial % 2 == 0 ? 2 : 1;
            for (int panel = 0; panel < panels; panel += perPass)
                CausalScan.Product(px, ldx, py, ldy, rows, extra, factor, pw, SimdGemm.Address(fast), cols, n, panel, Math.Min(perPass, panels - panel), reverse);
            CausalScan.Reference(SimdGemm.Address(xWhole), SimdGemm.Address(yWhole), rows + 1, pw, SimdGemm.Address(reference), cols, n, reverse);
            string name = $"n={n} rows={rows} ldx={ldx} ldy={ldy} cols={cols} reverse={reverse} appended={appended} scale={factor:F2} inputs={inputScale:g1}";
            ErrorReport.Of(name, fast, reference).Require(1e-5);

            var sums = full(new long[] { n }, float.NaN);
            CausalScan.Sums(px, ldx, py, ldy, rows, extra, factor, SimdGemm.Address(sums), n);
            var expected = (xWhole.to(ScalarType.Float64) * yWhole.to(ScalarType.Float64).cumsum(0)).sum(1);
            ErrorReport.Of($"sums: {name}", sums, expected).Require(1e-5);
        }
    }

    [Avx512Fact]
    public void Scan_rows_must_be_whole_groups_of_eight_and_panels_within_the_columns()
    {
        float[] data = new float[64];
        fixed (float* p = data)
        {
            var address = (nint)p;
            var error = Assert.Throws<ArgumentOutOfRangeException>(() =>
                CausalScan.Product((float*)address, 12, (float*)address, 12, 12, CausalScan.Extra.None, 1f, (float*)address, (float*)address, 16, 1, 0, 1, false));
            Assert.Equal("rows", error.ParamName);
            Assert.Contains("12", error.Message);
            var panels = Assert.Throws<ArgumentOutOfRangeException>(() =>
                CausalScan.Product((float*)address, 8, (float*)address, 8, 8, CausalScan.Extra.None, 1f, (float*)address, (float*)address, 16, 1, 0, 2, false));
            Assert.Equal("panels", panels.ParamName);
        }
    }

    /// <summary>
    /// Forward (o, g) and backward (dq, dk, dv) in float32 against <see cref="FastmaxChunked"/> on the same inputs in float64,
    /// 60 random cases (<see cref="FirstOrderCase"/>): 1–2 batches and heads, 1–300 queries, 0–20 extra keys, D 1–70, Dv 1–40.
    /// </summary>
    [Avx512Fact]
    public void Matches_the_chunked_kernel_in_float64()
    {
        var random = new Random(5);
        var generator = new Generator(6);
        for (int trial = 0; trial < 60; trial++)
        {
            using var scope = NewDisposeScope();
            var c = FirstOrderCase.Draw(random, generator, trial, causal: true, extraKeysOnly: true);
            var (q, k, v, gradOutput, a, name) = c;

            var (o64, g64) = FastmaxChunked.Forward(q, k, v, a, chunk: 16);
            var expected = FastmaxChunked.Backward(q, k, v, o64, g64, gradOutput, a, chunk: 16);
            var (q32, k32, v32, dO32) = c.Float32();
            Assert.True(FirstOrderCausalScans.Supports(q32), name);
            var (o, g) = FirstOrderCausalScans.Forward(q32, k32, v32, a);
            var (dq, dk, dV) = FirstOrderCausalScans.Backward(q32, k32, v32, o, g, dO32, a);
            ErrorReport.Of($"o ({name})", o, o64).Require(1e-5);
            ErrorReport.Of($"g ({name})", g, g64).Require(1e-5);
            // dq and dk vanish in exact arithmetic where a query sees one key (o = v whatever q is): roundoff is left there.
            ErrorReport.Of($"dq ({name})", dq, expected.Dq).Require(1e-4, absoluteFloor: 1e-5);
            ErrorReport.Of($"dk ({name})", dk, expected.Dk).Require(1e-4, absoluteFloor: 1e-5);
            ErrorReport.Of($"dv ({name})", dV, expected.Dv).Require(1e-4);
        }
    }

    [Fact]
    public void Takes_only_float32_on_the_CPU()
    {
        using var x32 = randn(1, 1, 4, 2);
        using var x64 = randn(new long[] { 1, 1, 4, 2 }, dtype: ScalarType.Float64);
        Assert.Equal(Vector512.IsHardwareAccelerated, FirstOrderCausalScans.Supports(x32));
        Assert.False(FirstOrderCausalScans.Supports(x64));
    }
}
