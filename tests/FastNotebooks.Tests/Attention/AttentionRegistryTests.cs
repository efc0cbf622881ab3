using FastNotebooks.Attention;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fma;
using FastNotebooks.Verification;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention;

public class AttentionRegistryTests
{
    public static TheoryData<string> Names => new(AttentionRegistry.Names);

    [Theory]
    [MemberData(nameof(Names))]
    public void Every_name_makes_a_mechanism_with_the_right_output_shape(string name)
    {
        foreach (var causal in new[] { false, true })
        {
            using var attention = AttentionRegistry.Create(name, causal);
            using var o = attention.forward(randn(2, 3, 5, 4), randn(2, 3, 7, 4), randn(2, 3, 7, 6));
            Assert.Equal(new long[] { 2, 3, 5, 6 }, o.shape);
            Assert.Equal(causal, attention.Causal);
        }
    }

    [Fact]
    public void Fastmax_name_and_its_dense_twin_agree()
    {
        using var q = randn(1, 2, 9, 4, dtype: ScalarType.Float64);
        using var fast = AttentionRegistry.Create("fastmax1-zero-centered", causal: true);
        using var dense = AttentionRegistry.Create("fastmax1-zero-centered-dense", causal: true);
        ErrorReport.Of("fastmax1-zero-centered", fast.forward(q, q, q), dense.forward(q, q, q)).Require(1e-12);
    }

    [Theory]
    [InlineData("fastmax2", 2, FastmaxNormalization.MeanCentered)]
    [InlineData("fastmax1-zero-centered", 1, FastmaxNormalization.ZeroCentered)]
    [InlineData("fastmax3-squared-norm", 3, FastmaxNormalization.SquaredNorm)]
    [InlineData("fastmax2-none", 2, FastmaxNormalization.None)]
    public void Names_map_to_options(string name, int order, FastmaxNormalization normalization)
    {
        var options = AttentionRegistry.FastmaxOptionsFor(name);
        Assert.Equal(order, options.Order);
        Assert.Equal(normalization, options.Normalization);
    }
}

public class AttentionRegistryFmaTests
{
    [Theory]
    [InlineData("fma")]
    [InlineData("fma-depthwise")]
    [InlineData("fma-avgpool")]
    public void Fma_names_make_modules_for_the_given_head_size(string name)
    {
        using var attention = AttentionRegistry.Create(name, causal: true, headDim: 8, maxLength: 256);
        using var o = attention.forward(randn(1, 2, 128, 8), randn(1, 2, 128, 8), randn(1, 2, 128, 8));
        Assert.Equal(new long[] { 1, 2, 128, 8 }, o.shape);
    }

    [Theory]
    [InlineData("fma", FmaDownsampling.Convolution, true)]
    [InlineData("fma-depthwise", FmaDownsampling.DepthwiseConvolution, true)]
    [InlineData("fma-avgpool", FmaDownsampling.AveragePooling, false)]
    public void Fma_is_the_learned_downsampling_and_avgpool_the_weightless_ablation(string name, FmaDownsampling expected, bool learned)
    {
        using var attention = (FmaAttention)AttentionRegistry.Create(name, causal: false, headDim: 8, maxLength: 256);
        Assert.Equal(expected, attention.Options.Downsampling);
        Assert.False(attention.Options.Causal);
        Assert.Equal(learned, attention.parameters().Any());
    }

    [Fact]
    public void Fma_conv_is_no_longer_a_name()
    {
        var error = Assert.Throws<ArgumentException>(() => AttentionRegistry.Create("fma-conv", headDim: 8, maxLength: 256));
        Assert.Contains("fma-conv", error.Message);
    }

    [Fact]
    public void Fma_without_sizes_says_what_it_needs()
    {
        var error = Assert.Throws<ArgumentException>(() => AttentionRegistry.Create("fma"));
        Assert.Contains("headDim", error.Message);
    }
}
