using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Verification;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax;

/// <summary>Regularizers act only in training mode and are unbiased on average.</summary>
public class FastmaxDropoutTests
{
    public static TheoryData<FastmaxDropout, int, bool> Variants => new()
    {
        { FastmaxDropout.QuadraticTerm, 2, false },
        { FastmaxDropout.QuadraticTerm, 2, true },
        { FastmaxDropout.LinearTerm, 1, false },
        { FastmaxDropout.LinearTerm, 1, true },
        { FastmaxDropout.OutputNoise, 2, false },
        { FastmaxDropout.OutputNoise, 2, true },
    };

    static (Tensor Q, Tensor K, Tensor V) Inputs()
    {
        var generator = new TorchSharp.torch.Generator(11);
        return (randn(new long[] { 1, 2, 24, 4 }, dtype: ScalarType.Float64, generator: generator),
                randn(new long[] { 1, 2, 24, 4 }, dtype: ScalarType.Float64, generator: generator),
                randn(new long[] { 1, 2, 24, 3 }, dtype: ScalarType.Float64, generator: generator));
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Evaluation_mode_is_deterministic_and_equals_no_dropout(FastmaxDropout dropout, int order, bool causal)
    {
        var (q, k, v) = Inputs();
        var options = new FastmaxOptions { Order = order, Causal = causal, Dropout = dropout, DropoutRate = 0.3 };
        using var module = new FastmaxAttention(options);
        module.eval();
        using var first = module.forward(q, k, v);
        using var second = module.forward(q, k, v);
        using var plain = FastmaxFunctional.Attention(q, k, v, options with { Dropout = FastmaxDropout.None, DropoutRate = 0 });
        Assert.True(first.eq(second).all().item<bool>(), "two evaluation passes differ");
        Assert.True(first.eq(plain).all().item<bool>(), "evaluation output differs from the no-dropout output");
    }

    /// <summary>
    /// The plain output, the mean of <paramref name="draws"/> training outputs minus it (the bias, up to noise), the standard
    /// error of that mean per entry (the draws' sample deviation over √draws), and one draw's relative-RMS deviation.
    /// </summary>
    static (Tensor Plain, Tensor Bias, Tensor StandardError, double SingleDrawRms) Draws(FastmaxOptions options, int draws)
    {
        var (q, k, v) = Inputs();
        using var module = new FastmaxAttention(options);
        module.train();
        var plain = FastmaxFunctional.Attention(q, k, v, options with { Dropout = FastmaxDropout.None, DropoutRate = 0 });
        manual_seed(5);
        var sum = zeros_like(plain);
        var sumOfSquares = zeros_like(plain);
        double single = 0;
        for (int i = 0; i < draws; i++)
        {
            using var o = module.forward(q, k, v);
            if (i == 0) single = ErrorReport.Of("one draw", o, plain).RelativeRms;
            sum.add_(o);
            sumOfSquares.add_(o * o);
        }
        var mean = sum / draws;
        var sd = (sumOfSquares / draws - mean * mean).clamp_min(0).sqrt() * Math.Sqrt(draws / (draws - 1.0));
        return (plain, mean - plain, sd / Math.Sqrt(draws), single);
    }

    /// <summary>Root mean square of z over the entries: about 1 for an unbiased estimate, far above for a bias.</summary>
    static double RmsZ(Tensor z) => z.square().mean().sqrt().item<double>();

    // Enough draws that a bias of 1% of the output (at rate 0.2) sits several standard errors out.
    const int UnbiasedDraws = 4000;

    /// <summary>
    /// Output noise, o·(1 + rate·ε), is exactly unbiased: the mean of the draws sits within its standard errors of the
    /// plain output (RMS of z ≈ 1; 1.5 is about eight standard deviations of that RMS over 144 entries). The same statistic
    /// with the mean shifted by 1% of the output is far above the limit, so the test can see a bias of that size.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Output_noise_draws_average_to_the_no_dropout_output(bool causal)
    {
        const double rate = 0.2, limit = 1.5;
        var options = new FastmaxOptions { Order = 2, Causal = causal, Dropout = FastmaxDropout.OutputNoise, DropoutRate = rate };
        var (plain, bias, standardError, single) = Draws(options, UnbiasedDraws);
        Assert.True(single > 1e-3, $"a training draw should differ from the plain output; relative-RMS {single:G3}");
        double rmsZ = RmsZ(bias / standardError);
        Assert.True(rmsZ < limit, $"RMS of z {rmsZ:G3}: the mean of {UnbiasedDraws} draws is further from the plain output than its standard errors allow");
        // Sensitivity: the same statistic for a mean off by 1% of the output is far above the limit.
        double shifted = RmsZ((bias + 0.01 * plain) / standardError);
        Assert.True(shifted > 2 * limit, $"a 1% bias would go unseen (RMS of z {shifted:G3}): raise the draws");
    }

    /// <summary>
    /// Feature dropout (quadratic-term, linear-term) makes the numerator and the denominator of each output unbiased
    /// but not their ratio: the mean of the draws is biased at second order in the noise. What holds, and is tested: the
    /// bias is below rate² of the output and small beside one draw's (first-order) deviation.
    /// </summary>
    [Theory]
    [InlineData(FastmaxDropout.QuadraticTerm, 2, false)]
    [InlineData(FastmaxDropout.QuadraticTerm, 2, true)]
    [InlineData(FastmaxDropout.LinearTerm, 1, false)]
    [InlineData(FastmaxDropout.LinearTerm, 1, true)]
    public void Feature_dropout_draws_average_to_the_no_dropout_output_up_to_a_second_order_bias(FastmaxDropout dropout, int order, bool causal)
    {
        const double rate = 0.2;
        var options = new FastmaxOptions { Order = order, Causal = causal, Dropout = dropout, DropoutRate = rate };
        var (plain, bias, _, single) = Draws(options, UnbiasedDraws);
        double relativeBias = bias.square().sum().sqrt().item<double>() / plain.square().sum().sqrt().item<double>();
        Assert.True(single > 1e-3, $"a training draw should differ from the plain output; relative-RMS {single:G3}");
        Assert.True(relativeBias < rate * rate, $"relative-RMS bias {relativeBias:G3} of the mean of {UnbiasedDraws} draws is not below rate² = {rate * rate:G3} (one draw: {single:G3})");
        Assert.True(relativeBias < single / 10, $"relative-RMS bias {relativeBias:G3} is not small beside one draw's deviation {single:G3}");
    }
}
