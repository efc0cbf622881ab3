using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>
/// The token-column products added into a given tensor as they are written (addTo, as the causal backward adds the
/// state-sized gradients to the chunk blocks' ones): the same bits as writing the product and adding it after, only the
/// target's own elements touched. The products themselves are compared with the tensor-op forms in <see cref="KernelPlanTests"/>.
/// </summary>
public class AddToTests
{
    /// <summary>
    /// 60 random cases: D from 5 to 40, 1 to 3 leading dims (a chunk-block dim among them), 1 to 100 tokens (partial strips of
    /// 32), states with unit-stride rows or columns, [u, 1] given as u, raw centred inputs; the target a view into a wider,
    /// longer tensor. φ·W and ∇(φ·W) added in cache must equal target + the written product bit for bit, and every element of
    /// the wider tensor outside the view must be left as it was.
    /// </summary>
    [Avx512Fact]
    public void Products_added_in_cache_equal_the_written_products_added_after()
    {
        var random = new Random(41);
        var generator = new Generator(43);
        var a = new FastmaxOptions { Order = 2 }.ResolvedCoefficients();
        for (int trial = 0; trial < 60; trial++)
        {
            using var scope = NewDisposeScope();
            int d = new[] { 5, 16, 31, 32, 40 }[random.Next(5)], n = trial < 3 ? new[] { 1, 32, 100 }[trial] : random.Next(1, 101);
            int c = random.Next(1, 15), rows = new PackedTaylorFeatures(d, a).Rows;
            long[] lead = Enumerable.Range(0, random.Next(1, 4)).Select(_ => (long)random.Next(1, 4)).ToArray();
            bool centre = trial % 4 == 3, appendOne = trial % 3 == 1, columnStates = random.Next(2) == 0;
            var features = new PackedTaylorFeatures(d, a);
            var raw = randn(lead.Append(n).Append(d).ToArray(), generator: generator) / Math.Sqrt(d);
            var x = centre ? raw : features.Extend(raw);
            var state = columnStates
                ? randn(lead.Append(c).Append(features.Size).ToArray(), generator: generator).transpose(-1, -2)
                : randn(lead.Append(features.Size).Append(c).ToArray(), generator: generator);
            var u = randn(lead.Append(n).Append(appendOne ? c - 1 : c).ToArray(), generator: generator);
            string name = $"D={d} n={n} C={c} lead=[{string.Join(",", lead)}] centre={centre} appendOne={appendOne} columnStates={columnStates}";

            Check($"φ·W {name}", random, generator, lead, n, target => TokenColumns.Project(x, state, d, rows, centre, target));
            if (appendOne && c == 1) continue;   // [u, 1] needs a column of u
            Check($"∇(φ·W) {name}", random, generator, lead, n, target => TokenColumns.Gradient(u, state, x, d, rows, centre, appendOne, target));
        }

        static void Check(string name, Random random, Generator generator, long[] lead, int n, Func<Tensor?, Tensor> product)
        {
            // The width of φ·W is the state's columns, of ∇ the inputs' D: take it from the written product.
            var written = product(null);
            long w = written.size(-1), extraTokens = random.Next(0, 5), extraWidth = random.Next(0, 5);
            var wide = randn(lead.Append(n + extraTokens).Append(w + extraWidth).ToArray(), generator: generator);
            var before = wide.clone();
            var target = wide.narrow(-2, extraTokens, n).narrow(-1, 0, w);
            var expected = target + written;
            var returned = product(target);
            Assert.True(Bits.Same(target, expected), name);
            Assert.Same(target, returned);
            var outside = ones_like(wide, dtype: ScalarType.Bool);
            outside.narrow(-2, extraTokens, n).narrow(-1, 0, w).fill_(false);
            Assert.True(Bits.Same(wide.masked_select(outside), before.masked_select(outside)), $"{name}: outside the target");
        }
    }

    /// <summary>
    /// Through the plan: a float32 target the kernel takes, a column-strided target it does not, and float64 (the tensor-op
    /// forms) all add the same bits as the written product added after; a target of the wrong shape is refused by name, and one
    /// whose rows share memory is not added to in cache.
    /// </summary>
    [Avx512Fact]
    public void The_plan_adds_where_the_kernel_cannot()
    {
        using var scope = NewDisposeScope();
        var a = new FastmaxOptions { Order = 2 }.ResolvedCoefficients();
        var generator = new Generator(47);
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
        {
            var features = new PackedTaylorFeatures(32, a, KernelPlan.Cpu);
            var x = features.Extend(randn(new long[] { 2, 45, 32 }, dtype: dtype, generator: generator) / Math.Sqrt(32));
            var state = randn(new long[] { 2, features.Size, 9 }, dtype: dtype, generator: generator);
            var u = randn(new long[] { 2, 45, 8 }, dtype: dtype, generator: generator);
            foreach (bool columns in new[] { false, true })
            {
                string name = $"{dtype} column-strided target={columns}";
                Tensor Target(long width) => columns
                    ? randn(new long[] { 2, width, 45 }, dtype: dtype, generator: generator).transpose(-1, -2)
                    : randn(new long[] { 2, 45, width }, dtype: dtype, generator: generator);
                Assert.Equal(dtype == ScalarType.Float32 && !columns, TokenColumns.AddsTo(Target(9), new long[] { 2, 45, 9 }));

                var projected = Target(9);
                var expectedProjection = projected + features.Project(x, state);
                Assert.True(Bits.Same(features.Project(x, state, addTo: projected), expectedProjection), $"φ·W {name}");
                Assert.True(Bits.Same(projected, expectedProjection), $"φ·W in place {name}");

                var gradient = Target(32);
                var expectedGradient = gradient + features.Gradient(x, u, state, appendOne: true);
                Assert.True(Bits.Same(features.Gradient(x, u, state, appendOne: true, addTo: gradient), expectedGradient), $"∇ {name}");
                Assert.True(Bits.Same(gradient, expectedGradient), $"∇ in place {name}");
            }
        }
        var x32 = new PackedTaylorFeatures(32, a).Extend(randn(new long[] { 2, 45, 32 }, generator: generator));
        var state32 = randn(new long[] { 2, 561, 9 }, generator: generator);
        var error = Assert.Throws<ArgumentException>(() => TokenColumns.Project(x32, state32, 32, 17, addTo: zeros(2, 44, 9)));
        Assert.Equal("addTo", error.ParamName);
        Assert.Contains("[2, 45, 9]", error.Message);

        // Rows that share memory (a broadcast row): not added in cache, where every token would add to the same row; the
        // plan's addition after refuses such a target as libtorch does.
        var shared = zeros(2, 1, 9).expand(2, 45, 9);
        Assert.False(TokenColumns.AddsTo(shared, new long[] { 2, 45, 9 }));
        Assert.Equal("addTo", Assert.Throws<ArgumentException>(() => TokenColumns.Project(x32, state32, 32, 17, addTo: shared)).ParamName);
        Assert.ThrowsAny<Exception>(() => new PackedTaylorFeatures(32, a, KernelPlan.Cpu).Project(x32, state32, addTo: shared));
    }
}
