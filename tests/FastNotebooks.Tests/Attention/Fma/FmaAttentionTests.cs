using FastNotebooks.Attention.Fma;
using FastNotebooks.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fma;

public class FmaAttentionTests
{
    public static TheoryData<int, int, int, bool, FmaDownsampling> Cases()
    {
        var data = new TheoryData<int, int, int, bool, FmaDownsampling>();
        foreach (var causal in new[] { true, false })
        foreach (var kind in Enum.GetValues<FmaDownsampling>())
        {
            data.Add(4, 1, 4, causal, kind);    // one block, no levels
            data.Add(2, 1, 4, causal, kind);    // two blocks, no levels
            data.Add(2, 2, 8, causal, kind);    // one level
            data.Add(4, 2, 64, causal, kind);   // three levels
            data.Add(1, 1, 32, causal, kind);   // m = 1, four levels
        }
        return data;
    }

    static FmaAttention Module(int m, int p, int n, bool causal, FmaDownsampling kind, int d = 3) => new(new FmaOptions
    {
        BlockSize = m, Rank = p, HeadDim = d, MaxLength = n, Causal = causal, Downsampling = kind,
    });

    [Theory]
    [MemberData(nameof(Cases))]
    public void Blocked_matches_dense(int m, int p, int n, bool causal, FmaDownsampling kind)
    {
        using var fma = Module(m, p, n, causal, kind);
        fma.to(ScalarType.Float64);
        using var q = randn(2, 2, n, 3, dtype: ScalarType.Float64);
        using var k = randn(2, 2, n, 3, dtype: ScalarType.Float64);
        using var v = randn(2, 2, n, 3, dtype: ScalarType.Float64);
        ErrorReport.Of($"FMA m={m} p={p} n={n} causal={causal} {kind}", fma.forward(q, k, v), fma.ForwardDense(q, k, v)).Require(1e-12);
    }

    [Theory]
    [InlineData(FmaDownsampling.Convolution)]
    [InlineData(FmaDownsampling.AveragePooling)]
    public void Causal_fma_never_looks_ahead(FmaDownsampling kind)
    {
        using var fma = Module(4, 2, 64, true, kind);
        fma.to(ScalarType.Float64);
        using var x = randn(1, 2, 64, 3, dtype: ScalarType.Float64);
        for (int t = 1; t < 64; t += 9)
        {
            using var changed = x.clone();
            changed[.., .., t..] += randn(1, 2, 64 - t, 3, dtype: ScalarType.Float64);
            using var before = fma.forward(x, x, x);
            using var after = fma.forward(changed, changed, changed);
            ErrorReport.Of($"outputs before token {t}", after.narrow(2, 0, t), before.narrow(2, 0, t)).Require(1e-14);
        }
    }

    [Theory]
    [InlineData(1, 16, true)]
    [InlineData(2, 64, true)]
    [InlineData(4, 128, false)]
    [InlineData(2, 64, false)]
    [InlineData(8, 8, true)]
    public void Near_field_and_levels_cover_the_past_exactly_once(int m, int n, bool causal)
    {
        var layout = new FmaLayout(n, m, causal);
        for (int i = 0; i < n; i++)
        {
            var covered = new int[n];
            for (int j = 0; j < n; j++) if (layout.SeesFine(i, j)) covered[j]++;
            for (int level = 0; level < layout.Levels; level++)
            {
                int w = layout.GroupWidth(level);
                foreach (var g in layout.CoarseGroups(i, level))
                    for (int j = g * w; j < (g + 1) * w; j++) covered[j]++;
            }
            int end = causal ? i + 1 : n;
            for (int j = 0; j < n; j++)
                Assert.True(covered[j] == (j < end ? 1 : 0), $"n={n} m={m} causal={causal}: query {i} covers token {j} {covered[j]} times");
        }
    }

    [Fact]
    public void Length_that_is_not_block_times_power_of_two_is_rejected()
    {
        using var fma = Module(4, 2, 64, true, FmaDownsampling.AveragePooling);
        var error = Assert.Throws<ArgumentException>(() => fma.forward(randn(1, 1, 24, 3), randn(1, 1, 24, 3), randn(1, 1, 24, 3)));
        Assert.Contains("got 24", error.Message);
    }
}
