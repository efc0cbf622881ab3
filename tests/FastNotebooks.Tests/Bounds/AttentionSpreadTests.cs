using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Bounds;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Bounds;

public class AttentionSpreadTests
{
    [Fact]
    public void Uniform_rows_have_ratio_one_and_full_entropy()
    {
        using var w = full(2, 3, 4, 4, 0.25, dtype: float64);
        var s = AttentionSpread.Of(w);
        Assert.Equal(24, s.Rows);
        Assert.Equal(1, s.MaxRatio, 12);
        Assert.Equal(Math.Log(4), s.MeanEntropy, 12);
        Assert.Equal(1, s.MinRelativeEntropy, 12);
        Assert.Equal(0, s.FractionAboveBound);
    }

    [Fact]
    public void A_row_by_hand()
    {
        // One row [1/2, 1/4, 1/4]: max/min 2, entropy (1/2)ln2 + 2·(1/4)ln4 = 1.5 ln 2; second row one-hot: ratio ∞.
        using var w = tensor(new double[] { 0.5, 0.25, 0.25, 1, 0, 0 }).view(2, 3).narrow(0, 0, 2).unsqueeze(0).expand(1, 2, 3);
        using var sq = cat(new[] { w, tensor(new double[] { 1.0 / 3, 1.0 / 3, 1.0 / 3 }).view(1, 1, 3) }, 1);   // [1, 3, 3]
        var (ratio, entropy, relative) = AttentionSpread.PerRow(sq);
        Assert.Equal(2, ratio[0], 12);
        Assert.True(double.IsPositiveInfinity(ratio[1]));
        Assert.Equal(1.5 * Math.Log(2), entropy[0], 12);
        Assert.Equal(0, entropy[1], 12);
        Assert.Equal(1, relative[2], 12);
    }

    [Fact]
    public void Causal_rows_ignore_the_keys_they_cannot_see()
    {
        // Row i uniform over keys 0..i, garbage above the diagonal that must not count.
        var rows = new double[4, 4];
        for (int i = 0; i < 4; i++) for (int j = 0; j < 4; j++) rows[i, j] = j <= i ? 1.0 / (i + 1) : 7.0;
        using var w = tensor(rows);
        var (ratio, entropy, _) = AttentionSpread.PerRow(w, causal: true);
        Assert.All(ratio, r => Assert.Equal(1, r, 12));
        for (int i = 0; i < 4; i++) Assert.Equal(Math.Log(i + 1), entropy[i], 12);
        Assert.Equal(1, AttentionSpread.Of(w, causal: true).MinRelativeEntropy, 12);
    }

    [Fact]
    public void Normalized_fastmax_rows_stay_within_a_factor_five_and_sharp_softmax_does_not()
    {
        var (q, k, _) = BoundInputs.Draw(BoundInputKind.Gaussian, 64, 16, 1, 3.0, 0, seed: 4);
        var fastmax = BoundMechanism.Fastmax(2, FastmaxNormalization.MeanCentered);
        var spread = AttentionSpread.Of(fastmax.Scores(fastmax.Similarities(q, k)));
        Assert.InRange(spread.MaxRatio, 1, BoundConstants.MaxRowSpread);
        var softmax = AttentionSpread.Of(BoundMechanism.Softmax.Scores(BoundMechanism.Softmax.Similarities(q, k)));
        Assert.True(softmax.MaxRatio > 100 * BoundConstants.MaxRowSpread, $"softmax at scale 3 should focus sharply: {softmax}");
    }

    [Fact]
    public void Bad_input_is_named()
    {
        var e = Assert.Throws<ArgumentException>(() => AttentionSpread.PerRow(ones(3)));
        Assert.Contains("weights", e.Message);
        var causal = Assert.Throws<ArgumentException>(() => AttentionSpread.PerRow(ones(4, 2), causal: true));
        Assert.Contains("Nk", causal.Message);
    }
}
