using FastNotebooks.Attention;
using FastNotebooks.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention;

public class LearnedScaleFastmaxTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void At_initialization_it_is_plain_fastmax2(bool causal)
    {
        using var q = randn(2, 3, 9, 4, dtype: float64);
        using var k = randn(2, 3, 9, 4, dtype: float64);
        using var v = randn(2, 3, 9, 5, dtype: float64);
        using var scaled = AttentionRegistry.Create(AttentionRegistry.LearnedScaleName, causal);
        scaled.to(float64);
        using var plain = AttentionRegistry.Create("fastmax2-dense", causal);
        ErrorReport.Of("learned scale at τ = 1", scaled.forward(q, k, v), plain.forward(q, k, v)).Require(1e-10);
        Assert.Equal(1, ((LearnedScaleFastmax)scaled).Scale(), 6);
    }

    [Fact]
    public void The_scale_is_learned_and_sharpens_the_rows()
    {
        using var attention = (LearnedScaleFastmax)AttentionRegistry.Create(AttentionRegistry.LearnedScaleName);
        using var q = randn(1, 2, 16, 8);
        using var k = randn(1, 2, 16, 8);
        var parameter = attention.parameters().Single();
        var before = FastNotebooks.Bounds.AttentionSpread.Of(attention.Scores(q, k));
        using (no_grad()) parameter.fill_(Math.Log(8));
        var after = FastNotebooks.Bounds.AttentionSpread.Of(attention.Scores(q, k));
        Assert.True(after.MaxRatio > before.MaxRatio && after.MaxRatio > 5, $"τ = 8 must leave the factor-5 limit: {before} → {after}");
        using var loss = attention.forward(q, k, randn(1, 2, 16, 3)).square().sum();
        loss.backward();
        Assert.True(parameter.grad!.abs().item<float>() > 0);
    }

    [Fact]
    public void Dropout_is_refused_by_name()
    {
        var e = Assert.Throws<ArgumentException>(() => AttentionRegistry.Create(AttentionRegistry.LearnedScaleName, dropout: 0.1));
        Assert.Contains("dropout", e.Message);
    }
}
