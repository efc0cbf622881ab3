using static TorchSharp.torch;

namespace FastNotebooks.Tests.Platform;

/// <summary>The native backend loads (see environment.md, "TorchSharp on Debian 12") and computes.</summary>
public class TorchSharpLoadsTests
{
    [Fact]
    public void Matmul_of_known_matrices_is_computed_by_libtorch()
    {
        using var a = tensor(new double[] { 1, 2, 3, 4 }, new long[] { 2, 2 });
        using var b = tensor(new double[] { 5, 6, 7, 8 }, new long[] { 2, 2 });
        using var c = a.matmul(b);
        Assert.Equal(new double[] { 19, 22, 43, 50 }, c.data<double>().ToArray());
    }

    [Fact]
    public void Autograd_differentiates_a_square()
    {
        using var x = tensor(3.0, requires_grad: true);
        using var y = x * x;
        y.backward();
        Assert.Equal(6.0, x.grad!.item<double>());
    }
}
