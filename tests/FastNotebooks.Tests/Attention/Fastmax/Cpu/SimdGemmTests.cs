using System.Runtime.Intrinsics;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Verification;
using FastNotebooks.Attention.Fastmax.Cpu;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>The AVX-512 GEMM against libtorch's matmul in float64 over random shapes and layouts.</summary>
public class SimdGemmTests
{
    /// <summary>
    /// 120 random cases: M, K, N from 1 to 140 (every tail of the 12-row tiles and 32-column panels), a few large
    /// ones (the chunk shapes), 0 to 2 leading dims, a as rows or as a transposed view, b narrowed from a wider
    /// tensor (row stride ≠ N), leading dims that are not contiguous, input scales 1e-3 to 1e3.
    /// </summary>
    [Avx512Fact]
    public void Equals_matmul_over_random_shapes_and_layouts()
    {
        var random = new Random(11);
        var generator = new Generator(13);
        for (int trial = 0; trial < 120; trial++)
        {
            using var scope = NewDisposeScope();
            bool large = trial % 20 == 19;
            int m = large ? random.Next(500, 1300) : trial < 4 ? 1 : random.Next(1, 141);
            int k = large ? random.Next(30, 600) : trial is 4 or 5 ? 1 : random.Next(1, 141);
            int n = large ? (trial % 40 == 19 ? 561 : 33) : trial is 6 or 7 ? 1 : random.Next(1, 141);
            long[] lead = Enumerable.Range(0, random.Next(0, 3)).Select(_ => (long)random.Next(1, 4)).ToArray();
            double scale = Math.Pow(10, random.Next(-3, 4));
            bool transposedA = random.Next(2) == 0, leadPermuted = lead.Length == 2 && random.Next(2) == 0;

            var a = transposedA
                ? randn(lead.Append(k).Append(m).ToArray(), generator: generator).transpose(-1, -2)
                : randn(lead.Append(m).Append(k).ToArray(), generator: generator);
            var b = randn(lead.Append(k).Append(n + 3).ToArray(), generator: generator).narrow(-1, 1, n);
            if (leadPermuted) (a, b) = (a.transpose(0, 1), b.transpose(0, 1));
            a = a * scale;
            string name = $"M={m} K={k} N={n} lead=[{string.Join(",", lead)}] aT={transposedA} permuted={leadPermuted} scale={scale:g1}";
            Assert.True(SimdGemm.Supports(a, b), name);

            var c = SimdGemm.MatMul(a, b);
            var reference = a.to_type(ScalarType.Float64).matmul(b.to_type(ScalarType.Float64));
            Assert.Equal(reference.shape, c.shape);
            Assert.True(c.is_contiguous());
            ErrorReport.Of(name, c.to_type(ScalarType.Float64), reference).Require(1e-5);
        }
    }

    /// <summary>
    /// Every GEMM of the float32 kernels (orders 1 and 2, unmasked and causal, one head, two and eight, forward and backward)
    /// reaches the tiles: a layout SimdGemm does not take (a transposed state, say) would silently run at libtorch's speed.
    /// </summary>
    [Avx512Fact]
    public void Float32_kernels_run_every_GEMM_on_the_tiles()
    {
        var fallbacks = new List<string>();
        SimdGemm.FallbackObserver = (a, b) => fallbacks.Add($"[{string.Join(",", a.shape)}]·[{string.Join(",", b.shape)}] strides {string.Join(",", a.stride())} / {string.Join(",", b.stride())}");
        try
        {
            foreach (int heads in new[] { 1, 2, 8 })
                foreach (int order in new[] { 1, 2 })
                    foreach (bool causal in new[] { false, true })
                    {
                        using var scope = NewDisposeScope();
                        var inputs = Enumerable.Range(0, 3).Select(_ => randn(1, heads, 700, 32).requires_grad_()).ToArray();
                        var o = FastmaxFunctional.Attention(inputs[0], inputs[1], inputs[2],
                            new FastmaxOptions { Order = order, Causal = causal, Algorithm = FastmaxAlgorithm.Factorized });
                        TorchSharp.torch.autograd.grad(new[] { o.sum() }, inputs);
                        Assert.True(fallbacks.Count == 0, $"H={heads} p={order} causal={causal}: {string.Join("; ", fallbacks)}");
                    }
        }
        finally { SimdGemm.FallbackObserver = null; }
    }

    /// <summary>A last panel of one column (N = 1, 33, 65: [v, 1]-shaped products) is a dot product per row of A; every tail of K.</summary>
    [Avx512Fact]
    public void One_column_panels_equal_matmul()
    {
        var generator = new Generator(17);
        foreach (int n in new[] { 1, 33, 65 })
            foreach (int k in new[] { 1, 5, 15, 16, 17, 31, 32, 33, 47, 48, 49, 100, 561 })
                foreach (bool transposedA in new[] { false, true })
                {
                    using var scope = NewDisposeScope();
                    var a = transposedA ? randn(new long[] { 2, k, 29 }, generator: generator).transpose(-1, -2) : randn(new long[] { 2, 29, k }, generator: generator);
                    var b = randn(new long[] { 2, k, n }, generator: generator);
                    var reference = a.to_type(ScalarType.Float64).matmul(b.to_type(ScalarType.Float64));
                    ErrorReport.Of($"N={n} K={k} aT={transposedA}", SimdGemm.MatMul(a, b).to_type(ScalarType.Float64), reference).Require(1e-5);
                }
    }

    [Avx512Fact]
    public void Empty_inner_dimension_gives_zeros()
    {
        using var a = randn(5, 0);
        using var b = randn(0, 7);
        using var c = SimdGemm.MatMul(a, b);
        Assert.Equal(new long[] { 5, 7 }, c.shape);
        Assert.Equal(0f, c.abs().max().item<float>());
    }

    [Fact]
    public void Cases_it_does_not_take_go_to_matmul()
    {
        using var a64 = randn(4, 3, dtype: ScalarType.Float64);
        using var b64 = randn(3, 5, dtype: ScalarType.Float64);
        Assert.False(SimdGemm.Supports(a64, b64));
        ErrorReport.Of("float64", SimdGemm.MatMul(a64, b64), a64.matmul(b64)).Require(0);

        using var a = randn(4, 3).requires_grad_();
        using var b = randn(3, 5);
        Assert.False(SimdGemm.Supports(a, b));
        using var c = SimdGemm.MatMul(a, b);
        Assert.True(c.requires_grad);

        using var columns = randn(5, 3).transpose(0, 1);   // b's rows not unit-stride
        Assert.False(SimdGemm.Supports(b.transpose(0, 1), columns));
    }

    /// <summary>
    /// The causal blocks' triangular products, 90 random cases: square sizes 1 to 140 (every tail of the tiles, the tiles the
    /// diagonal cuts and those wholly off it), N = 1 to 140, 0 to 2 leading dims, A as rows or a transposed view. A lower
    /// output equals the product on and below the diagonal (and holds only finite values above it); a lower or upper triangular
    /// A gives the whole product. Against float64 matmul.
    /// </summary>
    [Avx512Fact]
    public void Triangular_products_equal_matmul_where_needed()
    {
        var random = new Random(17);
        var generator = new Generator(19);
        foreach (var triangle in new[] { SimdGemm.Triangle.LowerOutput, SimdGemm.Triangle.LowerA, SimdGemm.Triangle.UpperA })
            for (int trial = 0; trial < 30; trial++)
            {
                using var scope = NewDisposeScope();
                int m = trial < 2 ? 1 : trial == 2 ? 128 : random.Next(1, 141);
                int k = triangle == SimdGemm.Triangle.LowerOutput ? (trial < 4 ? 1 : random.Next(1, 141)) : m;
                int n = triangle == SimdGemm.Triangle.LowerOutput ? m : trial is 3 or 4 ? 1 : trial == 5 ? 33 : random.Next(1, 141);
                long[] lead = Enumerable.Range(0, random.Next(0, 3)).Select(_ => (long)random.Next(1, 4)).ToArray();
                bool transposedA = random.Next(2) == 0;
                var a = transposedA
                    ? randn(lead.Append(k).Append(m).ToArray(), generator: generator).transpose(-1, -2)
                    : randn(lead.Append(m).Append(k).ToArray(), generator: generator);
                if (triangle == SimdGemm.Triangle.LowerA) a = a.tril();
                if (triangle == SimdGemm.Triangle.UpperA) a = a.triu();
                if (transposedA && triangle != SimdGemm.Triangle.LowerOutput) a = a.transpose(-1, -2).contiguous().transpose(-1, -2);
                var b = randn(lead.Append(k).Append(n).ToArray(), generator: generator);
                string name = $"{triangle} M={m} K={k} N={n} lead=[{string.Join(",", lead)}] aT={transposedA}";
                Assert.True(SimdGemm.Supports(a, b), name);

                var c = SimdGemm.MatMul(a, b, triangle).to_type(ScalarType.Float64);
                var reference = a.to_type(ScalarType.Float64).matmul(b.to_type(ScalarType.Float64));
                if (triangle == SimdGemm.Triangle.LowerOutput)
                {
                    Assert.True(c.isfinite().all().item<bool>(), $"{name}: entries above the diagonal are not finite");
                    // Below the diagonal of the same product left unwritten above it: the same bits; above it, the product or what the output held.
                    var held = full(c.shape, 7e7f);
                    SimdGemm.MatMul(a, b, SimdGemm.Triangle.LowerOutputUnwritten, into: held);
                    Assert.True(Bits.Same(held.tril(), SimdGemm.MatMul(a, b, triangle).tril()), $"{name}: unwritten above the diagonal, below it");
                    var above = held.triu(1).to_type(ScalarType.Float64);
                    var exact = (above - reference.triu(1)).abs() <= 1e-4 * (1 + reference.triu(1).abs());
                    Assert.True((exact | above.eq(7e7)).all().item<bool>(), $"{name}: above the diagonal neither the product nor what the output held");
                    (c, reference) = (c.tril(), reference.tril());
                }
                ErrorReport.Of(name, c, reference).Require(1e-5);
            }
    }

    [Fact]
    public void Triangular_products_need_square_blocks()
    {
        using var a = randn(4, 3);
        using var b = randn(3, 5);
        var lower = Assert.Throws<ArgumentException>(() => SimdGemm.MatMul(a, b, SimdGemm.Triangle.LowerOutput));
        Assert.Contains("M = 4, N = 5", lower.Message);
        var upper = Assert.Throws<ArgumentException>(() => SimdGemm.MatMul(a, b, SimdGemm.Triangle.UpperA));
        Assert.Contains("M = 4, K = 3", upper.Message);
    }

    /// <summary>
    /// Products written into a view of a larger tensor (the causal kernel's chunk blocks of dq, dk, dv), 60 random cases: the
    /// tokens [start, start + G·c) of an [B, H, N + 5, W + 3] tensor's first W columns as [B, H, G, c, W], every triangle, A as
    /// rows or a transposed view. The view must hold the product (against float64 matmul) and every entry outside it keep its
    /// value; the returned tensor is the view itself.
    /// </summary>
    [Avx512Fact]
    public void Products_into_views_equal_matmul_and_leave_the_rest()
    {
        var random = new Random(23);
        var generator = new Generator(29);
        var triangles = new[] { SimdGemm.Triangle.None, SimdGemm.Triangle.LowerA, SimdGemm.Triangle.UpperA };
        for (int trial = 0; trial < 60; trial++)
        {
            using var scope = NewDisposeScope();
            var triangle = triangles[trial % 3];
            long batch = random.Next(1, 3), heads = random.Next(1, 3), count = random.Next(1, 4), size = trial < 3 ? 128 : random.Next(1, 70);
            long width = trial is 3 or 4 ? 1 : random.Next(1, 70), k = triangle == SimdGemm.Triangle.None ? random.Next(1, 70) : size;
            long start = random.Next(0, 5), n = start + count * size + random.Next(0, 5);
            var whole = full(new[] { batch, heads, n, width + 3 }, -7f);
            var view = whole.narrow(2, start, count * size).narrow(-1, 0, width).unflatten(2, new[] { count, size });
            long[] lead = { batch, heads, count };
            bool transposedA = random.Next(2) == 0;
            var a = transposedA
                ? randn(lead.Append(k).Append(size).ToArray(), generator: generator).transpose(-1, -2)
                : randn(lead.Append(size).Append(k).ToArray(), generator: generator);
            if (triangle == SimdGemm.Triangle.LowerA) a = a.tril();
            if (triangle == SimdGemm.Triangle.UpperA) a = a.triu();
            var b = randn(lead.Append(k).Append(width).ToArray(), generator: generator);
            string name = $"{triangle} G={count} c={size} K={k} W={width} start={start} aT={transposedA}";
            Assert.True(SimdGemm.Writable(view), name);

            var returned = SimdGemm.MatMul(a, b, triangle, into: view);
            Assert.Same(view, returned);
            ErrorReport.Of(name, view.to_type(ScalarType.Float64), a.to_type(ScalarType.Float64).matmul(b.to_type(ScalarType.Float64))).Require(1e-5);
            var outside = ones(whole.shape, dtype: ScalarType.Bool);
            outside.narrow(2, start, count * size).narrow(-1, 0, width).fill_(false);
            Assert.True(whole.masked_select(outside).eq(-7f).all().item<bool>(), $"{name}: an entry outside the view changed");
        }
    }

    /// <summary>Where the tiles cannot store into the given tensor (float64, columns not unit-stride) the product is copied in; a wrong shape is refused by name.</summary>
    [Fact]
    public void Products_into_other_layouts_are_copied_and_wrong_shapes_refused()
    {
        using var a = randn(2, 5, 4);
        using var b = randn(2, 4, 3);
        using var columns = zeros(2, 3, 5).transpose(-1, -2);   // [2, 5, 3], column-major rows
        Assert.False(SimdGemm.Writable(columns));
        SimdGemm.MatMul(a, b, into: columns);
        ErrorReport.Of("columns", columns.to_type(ScalarType.Float64), a.to_type(ScalarType.Float64).matmul(b.to_type(ScalarType.Float64))).Require(1e-5);

        using var a64 = randn(2, 5, 4, dtype: ScalarType.Float64);
        using var b64 = randn(2, 4, 3, dtype: ScalarType.Float64);
        using var into64 = zeros(2, 5, 3, dtype: ScalarType.Float64);
        SimdGemm.MatMul(a64, b64, into: into64);
        ErrorReport.Of("float64", into64, a64.matmul(b64)).Require(0);

        using var wrong = zeros(2, 5, 4);
        var error = Assert.Throws<ArgumentException>(() => SimdGemm.MatMul(a, b, into: wrong));
        Assert.Equal("into", error.ParamName);
        Assert.Contains("[2, 5, 3]; got into [2, 5, 4]", error.Message);
    }
}
