using FastNotebooks.Attention.Softmax;
using FastNotebooks.Verification;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Softmax;

/// <summary>libtorch's SDPA against the plain-ops reference, with the library's KV-offset causal convention.</summary>
public class SoftmaxAttentionTests
{
    [Theory]
    [InlineData(1, 1, 1, 1, false)]
    [InlineData(9, 9, 5, 3, true)]
    [InlineData(6, 13, 4, 7, true)]
    [InlineData(6, 13, 4, 7, false)]
    [InlineData(1, 8, 2, 2, true)]
    public void Sdpa_matches_dense(int nq, int nk, int d, int dv, bool causal)
    {
        using var q = randn(2, 3, nq, d, dtype: ScalarType.Float64);
        using var k = randn(2, 3, nk, d, dtype: ScalarType.Float64);
        using var v = randn(2, 3, nk, dv, dtype: ScalarType.Float64);
        ErrorReport.Of($"softmax Nq={nq} Nk={nk} causal={causal}", SoftmaxAttention.Attention(q, k, v, causal), SoftmaxDense.Attention(q, k, v, causal)).Require(1e-12);
    }

    [Fact]
    public void Causal_query_ignores_later_keys()
    {
        using var q = randn(1, 1, 4, 3, dtype: ScalarType.Float64);
        using var k = randn(1, 1, 6, 3, dtype: ScalarType.Float64);
        using var v = randn(1, 1, 6, 2, dtype: ScalarType.Float64);
        using var changed = v.clone();
        changed[.., .., 5] += 100;   // only the last query (i = 3 sees j ≤ 6 − 4 + 3 = 5) may react
        using var before = SoftmaxAttention.Attention(q, k, v, causal: true);
        using var after = SoftmaxAttention.Attention(q, k, changed, causal: true);
        ErrorReport.Of("earlier queries", after.narrow(2, 0, 3), before.narrow(2, 0, 3)).Require(1e-14);
        Assert.True((after.narrow(2, 3, 1) - before.narrow(2, 3, 1)).abs().max().item<double>() > 1e-6);
    }
}
