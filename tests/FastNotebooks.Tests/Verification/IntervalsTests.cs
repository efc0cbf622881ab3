using FastNotebooks.Reporting;

namespace FastNotebooks.Tests.Verification;

public class IntervalsTests
{
    // Values from Wilson's formula worked by hand: p = 0.5, n = 100, z = 1.96 → centre 0.5, half-width
    // 1.96·√(0.0025 + 0.000096)/1.0384 = 0.0962.
    [Fact]
    public void Wilson_interval_of_half_on_a_hundred()
    {
        var i = Intervals.Wilson(50, 100);
        Assert.Equal(0.5, i.Estimate);
        Assert.Equal(0.4038, i.Low, 3);
        Assert.Equal(0.5962, i.High, 3);
    }

    [Fact]
    public void Wilson_interval_stays_inside_zero_and_one_and_excludes_nothing_it_should_hold()
    {
        var all = Intervals.Wilson(20, 20);
        Assert.Equal(1.0, all.High);
        Assert.True(all.Low is > 0.8 and < 0.9, $"low {all.Low}");   // 20/20 is 0.839 by the formula
        var none = Intervals.Wilson(0, 20);
        Assert.Equal(0.0, none.Low);
        Assert.True(none.Contains(0.0));
    }

    [Fact]
    public void A_larger_test_set_narrows_the_interval()
    {
        var small = Intervals.Wilson(60, 100);
        var large = Intervals.Wilson(6000, 10000);
        Assert.True(large.High - large.Low < (small.High - small.Low) / 5);
        Assert.False(large.Contains(0.5));
    }

    [Theory]
    [InlineData(-1, 10)]
    [InlineData(11, 10)]
    [InlineData(0, 0)]
    public void Bad_counts_are_rejected(long correct, long total) =>
        Assert.ThrowsAny<ArgumentOutOfRangeException>(() => Intervals.Wilson(correct, total));
}
