using FastNotebooks.Attention.Fastmax.Reference;
using FastNotebooks.Attention.Fastmax;
using static TorchSharp.torch;

namespace FastNotebooks.Bounds;

/// <summary>
/// The bias of one Fastmax regularizer at one rate: the mean output over <see cref="Draws"/> training-mode draws against
/// the plain (no-dropout) output, beside the noise floor of that mean.
/// </summary>
/// <param name="Variant">The regularizer.</param>
/// <param name="Order">Fastmax order p.</param>
/// <param name="Rate">Its rate.</param>
/// <param name="Draws">Draws averaged.</param>
/// <param name="RelativeBias">‖mean − plain‖ / ‖plain‖.</param>
/// <param name="NoiseFloor">√(Σ variance / Draws) / ‖plain‖: what ‖mean − plain‖/‖plain‖ would be for unbiased noise.</param>
public sealed record DropoutBiasPoint(FastmaxDropout Variant, int Order, double Rate, int Draws, double RelativeBias, double NoiseFloor)
{
    /// <summary>Bias in units of the noise floor: about 1 for unbiased noise, far above 1 where a bias shows.</summary>
    public double Significance => RelativeBias / NoiseFloor;
}

/// <summary>
/// Measures the bias of Fastmax's regularizers. Output noise o·(1 + rate·ε) has mean o exactly. Quadratic-term dropout
/// masks features in numerator and denominator alike, and a ratio of unbiased estimates is biased at second order;
/// linear-term dropout scales q̂, k̂ by 1/(1 − rate) where kept, which for p = 2 biases the s² term and lets |s| reach
/// 1/(1 − rate)², outside the bound's premise. The mean over M draws carries noise of size σ/√M, so a bias is seen only
/// once it exceeds that floor: hence many draws.
/// </summary>
public static class DropoutBias
{
    public static DropoutBiasPoint Measure(FastmaxDropout variant, int order, double rate, int draws, int n = 24, int d = 4, long seed = 0)
    {
        if (variant == FastmaxDropout.None) throw new ArgumentException("variant must be a regularizer, not None.", nameof(variant));
        if (draws < 2) throw new ArgumentException($"draws must be at least 2; got {draws}.", nameof(draws));
        if (!(rate > 0)) throw new ArgumentException($"rate must be positive; got {rate}.", nameof(rate));
        var generator = new TorchSharp.torch.Generator((ulong)seed);
        using var q = randn(1, 1, n, d, dtype: float64, generator: generator);
        using var k = randn(1, 1, n, d, dtype: float64, generator: generator);
        using var v = randn(1, 1, n, d, dtype: float64, generator: generator);
        var options = new FastmaxOptions { Order = order, Dropout = variant, DropoutRate = rate };
        manual_seed(seed);
        using var plain = FastmaxFunctional.Attention(q, k, v, options with { Dropout = FastmaxDropout.None });
        using var sum = zeros_like(plain);
        using var squares = zeros_like(plain);
        for (int m = 0; m < draws; m++)
        {
            using var scope = NewDisposeScope();
            var o = FastmaxFunctional.Attention(q, k, v, options, training: true);
            sum.add_(o);
            squares.add_(o.square());
        }
        using var mean = sum / draws;
        using var variance = (squares / draws - mean.square()).clamp_min(0) * draws / (draws - 1.0);
        double plainNorm = plain.norm().item<double>();
        return new DropoutBiasPoint(variant, order, rate, draws, (mean - plain).norm().item<double>() / plainNorm,
            Math.Sqrt(variance.sum().item<double>() / draws) / plainNorm);
    }
}
