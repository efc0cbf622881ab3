using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.Cpu;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>The quadratic-term dropout's masks: values, keep rate, independence of neighbours, reproducibility.</summary>
public class KeepMaskTests
{
    [Theory]
    [InlineData(0.8, ScalarType.Float32)]
    [InlineData(0.5, ScalarType.Float64)]
    [InlineData(0.05, ScalarType.Float32)]
    public void Entries_are_zero_or_one_over_keep_and_kept_at_the_keep_rate(double keep, ScalarType dtype)
    {
        using var mask = KeepMask.Draw(new long[] { 3, 1001, 333 }, keep, dtype);   // odd sizes: pairs split across rows
        using var kept = mask.ne(0);
        Assert.True(mask.masked_select(kept).to(ScalarType.Float64).sub(1 / keep).abs().max().item<double>() < (dtype == ScalarType.Float32 ? 1e-6 / keep : 1e-15 / keep));
        long n = mask.numel();
        double rate = kept.sum().item<long>() / (double)n;
        double sigma = Math.Sqrt(keep * (1 - keep) / n);
        Assert.True(Math.Abs(rate - keep) < 5 * sigma, $"kept {rate:F5}, expected {keep} ± {5 * sigma:F5}");
        // Neighbours (the two halves of one hash, and consecutive hashes) are uncorrelated: P(both kept) ≈ keep².
        using var flat = kept.flatten().to(ScalarType.Float64);
        double both = (flat.narrow(0, 0, n - 1) * flat.narrow(0, 1, n - 1)).mean().item<double>();
        double sigmaBoth = Math.Sqrt(keep * keep * (1 - keep * keep) / n);
        Assert.True(Math.Abs(both - keep * keep) < 6 * sigmaBoth, $"neighbours both kept {both:F5}, expected {keep * keep:F5}");
    }

    [Fact]
    public void Seeding_libtorch_repeats_the_mask_and_consecutive_draws_differ()
    {
        manual_seed(3);
        using var first = KeepMask.Draw(new long[] { 5000 }, 0.8, ScalarType.Float32);
        using var second = KeepMask.Draw(new long[] { 5000 }, 0.8, ScalarType.Float32);
        manual_seed(3);
        using var again = KeepMask.Draw(new long[] { 5000 }, 0.8, ScalarType.Float32);
        Assert.True(first.equal(again).all().item<bool>(), "same seed, different mask");
        Assert.False(first.equal(second).all().item<bool>(), "consecutive draws gave one mask");
    }

    [Fact]
    public void A_keep_probability_outside_zero_to_one_is_refused()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => KeepMask.Draw(new long[] { 4 }, 0, ScalarType.Float32));
        Assert.Equal("keep", error.ParamName);
    }
}
