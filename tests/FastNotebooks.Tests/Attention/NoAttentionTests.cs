using FastNotebooks.Attention;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention;

public class NoAttentionTests
{
    [Fact]
    public void The_control_outputs_zeros_of_the_value_width_and_dtype()
    {
        using var control = AttentionRegistry.Create("none", causal: true);
        var f64 = ScalarType.Float64;
        using var o = control.forward(randn(2, 3, 5, 4, dtype: f64), randn(2, 3, 7, 4, dtype: f64), randn(2, 3, 7, 6, dtype: f64) + 1);
        Assert.Equal(new long[] { 2, 3, 5, 6 }, o.shape);
        Assert.Equal(ScalarType.Float64, o.dtype);
        Assert.Equal(0.0, o.abs().max().item<double>());
    }

    [Fact]
    public void The_control_rejects_mismatched_inputs()
    {
        using var control = AttentionRegistry.Create("none");
        Assert.ThrowsAny<ArgumentException>(() => control.forward(randn(2, 3, 5, 4), randn(2, 3, 7, 5), randn(2, 3, 7, 6)));
    }
}
