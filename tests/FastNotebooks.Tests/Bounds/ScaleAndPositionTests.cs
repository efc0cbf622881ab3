using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Bounds;

namespace FastNotebooks.Tests.Bounds;

public class RawGradientScaleTests
{
    [Fact]
    public void Raw_gradient_grows_like_one_over_the_scale_while_the_normalized_one_stays()
    {
        var scales = new[] { 1e-3, 1e-2, 1e-1, 1, 10 };
        var points = RawGradientScale.Measure(BoundMechanism.Fastmax(2, FastmaxNormalization.MeanCentered), scales, n: 16, d: 8, seed: 2);
        Assert.Equal(-1, RawGradientScale.LogLogSlope(scales, points.Select(p => p.GradQ).ToArray()), 6);
        Assert.Equal(-1, RawGradientScale.LogLogSlope(scales, points.Select(p => p.GradK).ToArray()), 6);
        Assert.All(points, p => Assert.Equal(points[0].GradQHat, p.GradQHat, 9));
        Assert.True(points[0].GradQHat > 0);
    }

    [Fact]
    public void Slope_of_a_power_law()
    {
        Assert.Equal(2, RawGradientScale.LogLogSlope(new[] { 1.0, 2, 4 }, new[] { 3.0, 12, 48 }), 12);
        Assert.Throws<ArgumentException>(() => RawGradientScale.LogLogSlope(new[] { 1.0 }, new[] { 1.0 }));
    }
}

public class CausalBoundTests
{
    [Fact]
    public void Position_i_obeys_four_over_i_plus_one_and_twenty_over_its_square()
    {
        var points = CausalBound.Measure(BoundMechanism.Fastmax(2, FastmaxNormalization.MeanCentered), n: 24, d: 8, scale: 2, seed: 1);
        Assert.Equal(24, points.Count);
        Assert.Equal(0, points[0].Diagonal, 12);                      // one key, weight 1 whatever s is
        Assert.All(points, p => Assert.InRange(p.DiagonalScaled, 0, BoundConstants.Diagonal));
        Assert.All(points, p => Assert.InRange(p.OffDiagonalScaled, 0, BoundConstants.OffDiagonal));
        Assert.True(points[1].Diagonal > 0.05, "the second query's derivative is not decayed by N");
    }

    [Fact]
    public void Autograd_matches_the_closed_form_for_a_two_key_row()
    {
        // Two keys: a_0 = f_0/(f_0 + f_1), ∂a_0/∂s_0 = f′_0 f_1/(f_0 + f_1)², ∂a_0/∂s_1 = −f_0 f′_1/(f_0 + f_1)².
        var mechanism = BoundMechanism.Fastmax(2, FastmaxNormalization.MeanCentered);
        var (q, k, _) = BoundInputs.Draw(BoundInputKind.Gaussian, 2, 4, 1, 1, 0, seed: 5);
        using var s = mechanism.Similarities(q, k);
        double s0 = s[1, 0].item<double>(), s1 = s[1, 1].item<double>();
        static double F(double x) => 1 + x + x * x / 2;
        static double Fp(double x) => 1 + x;
        double g = F(s0) + F(s1);
        double diag = Math.Max(Fp(s0) * F(s1), Fp(s1) * F(s0)) / (g * g);
        double off = Math.Max(F(s0) * Fp(s1), F(s1) * Fp(s0)) / (g * g);
        var point = CausalBound.Measure(mechanism, n: 2, d: 4, scale: 1, seed: 5)[1];
        Assert.Equal(diag, point.Diagonal, 12);
        Assert.Equal(off, point.OffDiagonal, 12);
    }
}

public class DropoutBiasTests
{
    [Fact]
    public void Output_noise_is_unbiased_within_its_noise_floor()
    {
        var point = DropoutBias.Measure(FastmaxDropout.OutputNoise, 2, 0.2, draws: 400, seed: 3);
        Assert.True(point.NoiseFloor > 0);
        Assert.InRange(point.Significance, 0, 4);
    }

    [Fact]
    public void Linear_term_dropout_on_p2_shows_a_bias_above_its_noise_floor()
    {
        var point = DropoutBias.Measure(FastmaxDropout.LinearTerm, 2, 0.6, draws: 1000, seed: 3);
        Assert.True(point.Significance > 4, $"expected a visible bias: {point}");
    }

    [Fact]
    public void None_is_not_a_regularizer()
    {
        var e = Assert.Throws<ArgumentException>(() => DropoutBias.Measure(FastmaxDropout.None, 2, 0.2, 10));
        Assert.Contains("variant", e.Message);
    }
}
