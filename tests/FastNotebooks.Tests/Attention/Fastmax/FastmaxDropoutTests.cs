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

    [Theory]
    [MemberData(nameof(Variants))]
    public void Training_draws_average_to_the_no_dropout_output(FastmaxDropout dropout, int order, bool causal)
    {
        const int draws = 400;
        var (q, k, v) = Inputs();
        var options = new FastmaxOptions { Order = order, Causal = causal, Dropout = dropout, DropoutRate = 0.2 };
        using var module = new FastmaxAttention(options);
        module.train();
        using var plain = FastmaxFunctional.Attention(q, k, v, options with { Dropout = FastmaxDropout.None, DropoutRate = 0 });

        using var sum = zeros_like(plain);
        double singleDrawError = 0;
        for (int i = 0; i < draws; i++)
        {
            using var o = module.forward(q, k, v);
            if (i == 0) singleDrawError = ErrorReport.Of("one draw", o, plain).RelativeRms;
            sum.add_(o);
        }
        using var mean = sum / draws;
        var averaged = ErrorReport.Of("mean of draws", mean, plain);
        Assert.True(singleDrawError > 1e-3, $"a training draw should differ from the plain output; relative-RMS {singleDrawError:G3}");
        // Independent noise shrinks as 1/√draws (20× here); allow for the small bias of a ratio of unbiased sums.
        Assert.True(averaged.RelativeRms < singleDrawError / 5, $"{averaged} vs one draw's relative-RMS {singleDrawError:G3}");
    }
}
