using FastNotebooks.Bench;

namespace FastNotebooks.Tests.Bench;

public class PairedRatiosTests
{
    [Fact]
    public void Two_hundred_ratios_give_the_median_and_ranks_86_and_115()
    {
        // k = ⌊100 − 0.98·√200⌋ = ⌊86.14⌋ = 86: the 86th and the 115th (= 201 − 86) smallest, whatever the input order.
        var ratios = Enumerable.Range(1, 200).Select(i => (double)i).Reverse().ToList();
        var paired = PairedRatios.Of(ratios);
        Assert.Equal((200, 100.5, 86.0, 115.0), (paired.Count, paired.Median, paired.Lower, paired.Upper));
    }

    [Fact]
    public void Few_ratios_span_their_extremes_and_an_odd_count_has_its_middle_one()
    {
        var paired = PairedRatios.Of(new[] { 1.02, 0.97, 1.10, 1.00, 0.99 });
        Assert.Equal((5, 1.00, 0.97, 1.10), (paired.Count, paired.Median, paired.Lower, paired.Upper));
        Assert.Equal("0.0 % [−3.0, +10.0]", paired.ToString());
    }

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.PositiveInfinity)]
    public void A_ratio_that_is_not_a_positive_number_is_refused(double bad)
    {
        var e = Assert.Throws<ArgumentException>(() => PairedRatios.Of(new[] { 1.0, bad }));
        Assert.Contains("ratios", e.Message);
    }

    [Fact]
    public void No_ratios_are_refused() => Assert.Throws<ArgumentException>(() => PairedRatios.Of(Array.Empty<double>()));
}
