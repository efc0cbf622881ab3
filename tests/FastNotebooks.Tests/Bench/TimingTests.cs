using FastNotebooks.Bench;

namespace FastNotebooks.Tests.Bench;

/// <summary>How many runs the timing helpers make (counted, never timed: the test must not depend on the machine's speed).</summary>
public class TimingTests
{
    [Fact]
    public void Samples_for_a_budget_stop_at_the_cap_or_at_the_requested_repeats()
    {
        int calls = 0;
        var capped = Timing.SamplesFor(() => calls++, repeats: 3, totalMs: 1e9, maximumRepeats: 40, warmup: 2);
        Assert.Equal(40, capped.Length);
        Assert.Equal(42, calls);

        calls = 0;
        var plain = Timing.SamplesFor(() => calls++, repeats: 5, totalMs: 0, maximumRepeats: 40, warmup: 1);
        Assert.Equal(5, plain.Length);
        Assert.Equal(6, calls);
        Assert.All(plain, ms => Assert.True(ms >= 0));
    }
}
