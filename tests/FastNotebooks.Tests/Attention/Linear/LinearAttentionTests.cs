using FastNotebooks.Attention.Linear;
using FastNotebooks.Verification;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Linear;

public class LinearAttentionTests
{
    [Theory]
    [InlineData(1, 1, 1, 1, false)]
    [InlineData(1, 1, 1, 1, true)]
    [InlineData(63, 63, 7, 5, true)]
    [InlineData(130, 130, 4, 4, true)]
    [InlineData(20, 29, 3, 2, true)]
    [InlineData(20, 29, 3, 2, false)]
    public void Linear_matches_its_dense_form(int nq, int nk, int d, int dv, bool causal)
    {
        foreach (var (dtype, tolerance) in new[] { (ScalarType.Float64, 1e-12), (ScalarType.Float32, 1e-5) })
        {
            using var q = randn(2, 2, nq, d, dtype: dtype);
            using var k = randn(2, 2, nk, d, dtype: dtype);
            using var v = randn(2, 2, nk, dv, dtype: dtype);
            ErrorReport.Of($"linear {dtype} Nq={nq} Nk={nk} causal={causal}", LinearAttention.Attention(q, k, v, causal), LinearDense.Attention(q, k, v, causal)).Require(tolerance);
        }
    }

    [Fact]
    public void Causal_linear_never_looks_ahead()
    {
        using var x = randn(1, 1, 100, 4, dtype: ScalarType.Float64);
        using var changed = x.clone();
        changed[.., .., 70..] += 3;
        using var before = LinearAttention.Attention(x, x, x, causal: true);
        using var after = LinearAttention.Attention(changed, changed, changed, causal: true);
        ErrorReport.Of("first 70 outputs", after.narrow(2, 0, 70), before.narrow(2, 0, 70)).Require(1e-14);
    }
}
