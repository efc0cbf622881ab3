namespace FastNotebooks.Tests;

public class OpenMpSpinTests
{
    [Fact]
    public void Sets_the_spin_count_on_linux_when_neither_variable_is_given() =>
        Assert.Equal("10000", OpenMpSpin.ValueFor(null, null, linux: true));

    [Theory]
    [InlineData("300000", null, true)]    // the user's spin count stays
    [InlineData(null, "PASSIVE", true)]   // so does a wait policy
    [InlineData(null, null, false)]       // not glibc's platform
    public void Keeps_what_was_given(string? spinCount, string? waitPolicy, bool linux) =>
        Assert.Null(OpenMpSpin.ValueFor(spinCount, waitPolicy, linux));
}
