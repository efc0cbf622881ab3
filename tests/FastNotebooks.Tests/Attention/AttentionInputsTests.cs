using FastNotebooks.Attention;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Softmax;
using FastNotebooks.Attention.Fastmax.Reference;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention;

/// <summary>Every bad input raises an ArgumentException that names the argument and what it got.</summary>
public class AttentionInputsTests
{
    static readonly Func<Tensor, Tensor, Tensor, bool, Tensor>[] Mechanisms =
    {
        (q, k, v, causal) => FastmaxFunctional.Attention(q, k, v, new FastmaxOptions { Causal = causal }),
        (q, k, v, causal) => SoftmaxAttention.Attention(q, k, v, causal),
        (q, k, v, causal) => FastmaxDense.Attention(q, k, v, new FastmaxOptions { Causal = causal }),
        (q, k, v, causal) => SoftmaxDense.Attention(q, k, v, causal),
    };

    static void ExpectError(Tensor q, Tensor k, Tensor v, bool causal, string parameter, params string[] fragments)
    {
        foreach (var attention in Mechanisms)
        {
            var error = Assert.Throws<ArgumentException>(() => attention(q, k, v, causal));
            Assert.Equal(parameter, error.ParamName);
            foreach (var fragment in fragments) Assert.Contains(fragment, error.Message);
        }
    }

    [Fact]
    public void Wrong_rank_names_the_argument_and_shape() =>
        ExpectError(randn(4, 8, 3), randn(1, 4, 8, 3), randn(1, 4, 8, 2), false, "q", "rank 3", "[4, 8, 3]");

    [Fact]
    public void Feature_size_mismatch_between_q_and_k() =>
        ExpectError(randn(1, 2, 8, 3), randn(1, 2, 8, 4), randn(1, 2, 8, 2), false, "k", "[1, 2, 8, 3]", "[1, 2, 8, 4]");

    [Fact]
    public void Key_count_mismatch_between_k_and_v() =>
        ExpectError(randn(1, 2, 8, 3), randn(1, 2, 8, 3), randn(1, 2, 9, 2), false, "v", "[1, 2, 8, 3]", "[1, 2, 9, 2]");

    [Fact]
    public void Causal_with_fewer_keys_than_queries() =>
        ExpectError(randn(1, 2, 8, 3), randn(1, 2, 5, 3), randn(1, 2, 5, 2), true, "k", "Nq = 8", "Nk = 5");

    [Fact]
    public void Mixed_dtypes() =>
        ExpectError(randn(1, 2, 8, 3), randn(1, 2, 8, 3, dtype: ScalarType.Float64), randn(1, 2, 8, 2), false, "k", "Float32", "Float64");

    [Fact]
    public void Mixed_devices()
    {
        var meta = new Device(TorchSharp.DeviceType.META);
        ExpectError(randn(1, 2, 8, 3), randn(1, 2, 8, 3, device: meta), randn(1, 2, 8, 2), false, "k", "cpu", "meta");
    }

    [Fact]
    public void Mismatched_batch_or_heads() =>
        ExpectError(randn(1, 2, 8, 3), randn(1, 3, 8, 3), randn(1, 3, 8, 2), false, "k", "[1, 2, 8, 3]", "[1, 3, 8, 3]");

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    public void Unsupported_order(int order)
    {
        var error = Assert.Throws<ArgumentException>(() =>
            FastmaxFunctional.Attention(randn(1, 1, 4, 2), randn(1, 1, 4, 2), randn(1, 1, 4, 2), new FastmaxOptions { Order = order }));
        Assert.Equal("Order", error.ParamName);
        Assert.Contains($"got {order}", error.Message);
    }

    [Fact]
    public void Wrong_number_of_coefficients()
    {
        var error = Assert.Throws<ArgumentException>(() => new FastmaxOptions { Order = 2, Coefficients = new[] { 1.0, 1.0 } }.Validate());
        Assert.Equal("Coefficients", error.ParamName);
    }

    [Fact]
    public void Unknown_mechanism_name_lists_the_known_ones()
    {
        var error = Assert.Throws<ArgumentException>(() => AttentionRegistry.Create("fastmax9000"));
        Assert.Contains("softmax", error.Message);
        Assert.Contains("fastmax9000", error.Message);
    }
}
