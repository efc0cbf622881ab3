using FastNotebooks.Reporting;

namespace FastNotebooks.Tests.Reporting;

public class CheckTests
{
    [Fact]
    public void A_broken_fact_names_the_fact_the_value_and_the_threshold()
    {
        var e = Assert.Throws<CheckFailedException>(() => Check.AtMost("max relative error of step 3", 2.5e-3, 1e-6));
        Assert.Contains("max relative error of step 3", e.Message);
        Assert.Contains("0.0025", e.Message);
        Assert.Contains("≤ 1E-06", e.Message);
    }

    [Fact]
    public void NaN_and_infinity_fail_every_numeric_check()
    {
        Assert.Throws<CheckFailedException>(() => Check.AtMost("f", double.NaN, 1));
        Assert.Throws<CheckFailedException>(() => Check.AtLeast("f", double.NaN, 0));
        Assert.Throws<CheckFailedException>(() => Check.Near("f", double.NaN, 0, 1));
        Assert.Throws<CheckFailedException>(() => Check.Finite("f", double.PositiveInfinity));
        Assert.Throws<CheckFailedException>(() => Check.AtMost("f", double.PositiveInfinity, 1e300));
        var e = Assert.Throws<CheckFailedException>(() => Check.AllFinite("errors", new[] { 1.0, 2.0, double.NaN }));
        Assert.Contains("entry 2 of 3", e.Message);
    }

    [Fact]
    public void Facts_that_hold_return_the_measured_value()
    {
        Assert.Equal(0.5, Check.AtMost("f", 0.5, 1));
        Assert.Equal(2.0, Check.AtLeast("f", 2, 1));
        Assert.Equal(1.05, Check.Near("f", 1.05, 1, 0.1));
        Assert.Equal(3, Check.Equal("count", 3, 3));
        Assert.Throws<CheckFailedException>(() => Check.Equal("count", 3, 4));
        Assert.Throws<CheckFailedException>(() => Check.True("flag", false, "was false"));
    }
}
