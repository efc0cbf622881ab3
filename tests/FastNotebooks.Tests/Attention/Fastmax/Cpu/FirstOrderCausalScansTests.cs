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
    /// <see cref="CausalScan.Product"/> over every panel against <see cref="CausalScan.Reference"/>, both directions,
    /// 80 random cases: 1 to 300 tokens, 8 to 48 state rows, 16 to 48 columns, scales 1e-3 to 1e3.
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
            bool reverse = trial % 2 == 1;
            double scale = Math.Pow(10, random.Next(-3, 4));
            var (x, y, w) = (randn(new long[] { n, rows }, generator: generator) * scale, randn(new long[] { n, rows }, generator: generator),
                randn(new long[] { n, cols }, generator: generator));
            var (fast, reference) = (full(new long[] { n, cols }, float.NaN), zeros(n, cols));
            float* px = SimdGemm.Address(x), py = SimdGemm.Address(y), pw = SimdGemm.Address(w);
            for (int panel = 0; panel < cols / CausalScan.Panel; panel++)
                CausalScan.Product(px, py, rows, pw, SimdGemm.Address(fast), cols, n, panel, reverse);
            CausalScan.Reference(px, py, rows, pw, SimdGemm.Address(reference), cols, n, reverse);
            ErrorReport.Of($"n={n} rows={rows} cols={cols} reverse={reverse} scale={scale:g1}", fast, reference).Require(1e-5);
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
