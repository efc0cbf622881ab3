using FastNotebooks.Bench;

namespace FastNotebooks.Tests.Bench;

/// <summary>The peak measured alternately with a call: how often the call runs and what the rates are made of (never their size).</summary>
public class FmaPeakTests
{
    [Fact]
    public void A_paired_rate_times_every_round_and_divides_the_fastest_call_by_the_fastest_loop()
    {
        int calls = 0;
        var rate = FmaPeak.Paired(() => { calls++; Thread.SpinWait(1000); }, flops: 2e6, rounds: 3);
        if (!FmaPeak.Supported)
        {
            Assert.Null(rate);
            return;
        }
        Assert.NotNull(rate);
        Assert.Equal(1 + 3 * FmaPeak.CallsPerRound, calls);   // one untimed call, then every round's
        Assert.Equal(3, rate.Rounds);
        Assert.True(rate.CallMs > 0 && double.IsFinite(rate.CallMs), $"call time {rate.CallMs}");
        Assert.Equal(2e6 / (rate.CallMs * 1e6), rate.Gflops, 12);
        Assert.True(rate.PeakGflops > 0 && double.IsFinite(rate.PeakGflops), $"peak {rate.PeakGflops}");
        Assert.Equal(rate.Gflops / rate.PeakGflops, rate.Fraction, 12);
    }

    [Fact]
    public void Bad_arguments_name_themselves()
    {
        Assert.Equal("rounds", Assert.Throws<ArgumentException>(() => FmaPeak.Paired(() => { }, 1, rounds: 0)).ParamName);
        Assert.Equal("flops", Assert.Throws<ArgumentException>(() => FmaPeak.Paired(() => { }, 0)).ParamName);
        Assert.Equal("flops", Assert.Throws<ArgumentException>(() => FmaPeak.Paired(() => { }, double.NaN)).ParamName);
    }
}
