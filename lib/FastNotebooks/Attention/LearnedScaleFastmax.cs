using FastNotebooks.Attention.Fastmax.Reference;
using FastNotebooks.Attention.Fastmax;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FastNotebooks.Attention;

/// <summary>
/// Ablation of the sharpness limit (registry name <c>fastmax2-learned-scale</c>): Fastmax p = 2 with mean-centered
/// q̂, k̂, then s = τ·q̂·k̂ with one learned τ per layer (τ = e^θ, θ initialized to 0, so training starts at τ = 1,
/// plain Fastmax). **It leaves the gradient bound's premise**: once τ > 1, |s| may exceed 1, the weights are no longer
/// held within a factor 5 of uniform, and the bounds of <see cref="Bounds.BoundConstants"/> no longer apply. It exists
/// to ask whether the limit on how sharply Fastmax can focus explains a gap to softmax.
/// q, k [B, H, N, D], v [B, H, N, Dv] → [B, H, N, Dv].
/// </summary>
public sealed class LearnedScaleFastmax : AttentionMechanism
{
    readonly Parameter logScale;
    readonly FastmaxOptions inner;

    public LearnedScaleFastmax(bool causal) : base(nameof(LearnedScaleFastmax), causal)
    {
        logScale = nn.Parameter(zeros(1));
        inner = AttentionRegistry.FastmaxOptionsFor("fastmax2-none", causal);   // normalization is done here, before τ
        RegisterComponents();
    }

    /// <summary>The current τ.</summary>
    public double Scale() { using var noGrad = no_grad(); return logScale.exp().to(float64).item<double>(); }

    public override Tensor forward(Tensor q, Tensor k, Tensor v)
    {
        AttentionInputs.Validate(q, k, v, Causal);
        using var scope = NewDisposeScope();
        var (qs, ks) = Scaled(q, k);
        return FastmaxFunctional.Attention(qs, ks, v, inner, training).MoveToOuterDisposeScope();
    }

    /// <summary>The dense attention weights [B, H, Nq, Nk] this module applies (for attention maps and spread).</summary>
    public Tensor Scores(Tensor q, Tensor k)
    {
        using var scope = NewDisposeScope();
        var (qs, ks) = Scaled(q, k);
        return FastmaxDense.Scores(qs, ks, inner).MoveToOuterDisposeScope();
    }

    (Tensor Q, Tensor K) Scaled(Tensor q, Tensor k)
    {
        var tau = logScale.exp().to(q.dtype);                                                // [1]
        return (FastmaxNormalizer.Normalize(q, FastmaxNormalization.MeanCentered, Causal) * tau,
                FastmaxNormalizer.Normalize(k, FastmaxNormalization.MeanCentered, Causal));
    }
}
