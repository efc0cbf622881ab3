using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Bounds;
using FastNotebooks.Verification;
using FastNotebooks.Attention.Fastmax.Reference;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Bounds;

/// <summary>The autograd Jacobians of the bound measurements against their closed forms (independent cross-checks).</summary>
public class ScoreJacobianTests
{
    public static TheoryData<int, FastmaxNormalization, int> Cases => new()
    {
        { 2, FastmaxNormalization.MeanCentered, 5 },
        { 2, FastmaxNormalization.SquaredNorm, 7 },
        { 2, FastmaxNormalization.None, 6 },
        { 1, FastmaxNormalization.MeanCentered, 7 },
    };

    /// <summary>f, f′ and g = Σ_l f(s_il) for the mechanism's polynomial.</summary>
    static (Tensor F, Tensor Derivative, Tensor G) Kernel(BoundMechanism mechanism, Tensor s)
    {
        var f = TaylorFeatures.Polynomial(s, mechanism.Coefficients);
        var derivative = TaylorFeatures.Polynomial(s, TaylorFeatures.Derivative(mechanism.Coefficients));
        return (f, derivative, f.sum(-1, keepdim: true));
    }

    static Tensor Similarities(BoundMechanism mechanism, int n, double scale, long seed)
    {
        var (q, k, _) = BoundInputs.Draw(BoundInputKind.Gaussian, n, 6, 3, scale, 0, seed);
        return mechanism.Similarities(q, k);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Score_jacobian_matches_closed_form(int order, FastmaxNormalization normalization, int n)
    {
        using var scope = NewDisposeScope();
        var mechanism = BoundMechanism.Fastmax(order, normalization);
        var s = Similarities(mechanism, n, 0.7, seed: 11 + n);
        var (f, derivative, g) = Kernel(mechanism, s);
        var a = f / g;
        // ∂a_ij/∂s_il = (δ_jl f′_ij − a_ij f′_il)/g_i, as J[i, j, l]
        var expected = (derivative / g).diag_embed() - a.unsqueeze(2) * (derivative / g).unsqueeze(1); // [N, N, N]
        var actual = ScoreJacobian.Full(s, mechanism.Scores);
        ErrorReport.Of($"∂a/∂s ({mechanism}, N={n})", actual, expected).Require(1e-12);
    }

    [Fact]
    public void Softmax_score_jacobian_matches_closed_form()
    {
        using var scope = NewDisposeScope();
        var s = Similarities(BoundMechanism.Softmax, 6, 1.3, seed: 5);
        var a = s.softmax(-1);
        var expected = a.diag_embed() - a.unsqueeze(2) * a.unsqueeze(1); // a_ij(δ_jl − a_il)
        ErrorReport.Of("∂a/∂s (softmax)", ScoreJacobian.Full(s, BoundMechanism.Softmax.Scores), expected).Require(1e-12);
    }

    [Fact]
    public void Maxima_agree_with_the_full_jacobian()
    {
        using var scope = NewDisposeScope();
        var mechanism = BoundMechanism.Fastmax(2, FastmaxNormalization.ZeroCentered);
        var s = Similarities(mechanism, 6, 2, seed: 3);
        var full = ScoreJacobian.Full(s, mechanism.Scores).abs(); // [i, j, l]
        var onDiagonal = eye(6, dtype: ScalarType.Bool).unsqueeze(0).expand(6, 6, 6);
        var (diagonal, offDiagonal) = ScoreJacobian.Maxima(s, mechanism.Scores);
        Assert.Equal(full.masked_select(onDiagonal).max().item<double>(), diagonal, 15);
        Assert.Equal(full.masked_select(onDiagonal.logical_not()).max().item<double>(), offDiagonal, 15);
    }

    [Theory]
    [InlineData(2, FastmaxNormalization.MeanCentered)]
    [InlineData(2, FastmaxNormalization.SquaredNorm)]
    [InlineData(1, FastmaxNormalization.MeanCentered)]
    public void Output_jacobian_matches_closed_form(int order, FastmaxNormalization normalization)
    {
        using var scope = NewDisposeScope();
        var mechanism = BoundMechanism.Fastmax(order, normalization);
        var (q, k, v) = BoundInputs.Draw(BoundInputKind.Gaussian, 7, 6, 3, 0.5, 0, seed: 21);
        var (qHat, kHat) = (mechanism.Normalize(q), mechanism.Normalize(k));
        var (f, derivative, g) = Kernel(mechanism, qHat.matmul(kHat.t()));
        var o = (f / g).matmul(v); // [N, Dv]
        var w = derivative / g;    // [N, N]: f′_il / g_i
        // ∂o_i/∂q̂_i = Σ_l f′_il (v_l − o_i) k̂_lᵀ / g_i, as J[i, e, m]
        var expected = einsum("il,le,lm->iem", w, v, kHat) - einsum("il,ie,lm->iem", w, o, kHat);
        ErrorReport.Of($"∂o/∂q̂ ({mechanism})", OutputJacobian.PerToken(qHat, kHat, v, mechanism.Scores), expected).Require(1e-12);
    }
}
