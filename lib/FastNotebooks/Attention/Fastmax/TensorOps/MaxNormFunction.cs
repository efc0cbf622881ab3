using TorchSharp;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.Reference;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax.TensorOps;

/// <summary>
/// The max-norm normalizations (mean-centred and zero-centred) as one autograd node with a written-out backward.
/// Composed of tensor ops, autograd records about ten nodes per call and their backward costs several times the
/// forward: at p = 1 more than the whole Fastmax kernel.
/// With c = x − mean(x) (or x), n_t = ‖c_t‖, m the largest n (or the running largest, causal), y = c / max(m, floor):
/// dc = dy / m′, dm_t = −(dy_t·y_t) / m′_t (zero where the floor holds), routed to the token that holds the maximum,
/// where it adds dm·c/n; dx = dc minus its mean when centred. <see cref="FastmaxDense.Normalize"/> is the oracle. The
/// per-token work runs in <see cref="MaxNormLoops"/> where it applies, else in the tensor-op forms below.
/// </summary>
public sealed class MaxNormFunction : autograd.SingleTensorFunction<MaxNormFunction>
{
    public override string Name => "FastmaxMaxNorm";

    /// <summary>The norm floor as one native scalar: a literal makes a new one per call, left for a .NET finalizer (<see cref="Accumulate"/>).</summary>
    static readonly Scalar Floor = FastmaxNormalizer.NormFloor.ToScalar();

    /// <summary>y for x [B, H, N, D]: centred (mean over D) when <paramref name="centre"/>, divided by the largest token norm.</summary>
    /// <remarks>Where no gradient is wanted, the same forward runs without an autograd node (its overhead was most of the time at N = 4096).</remarks>
    public static Tensor Apply(Tensor x, bool centre, bool causal, KernelPlan plan)
    {
        if (is_grad_enabled() && x.requires_grad) return apply(x, centre, causal, plan);
        using var scope = NewDisposeScope();
        return Normalized(x, centre, causal, plan).Y.MoveToOuterDisposeScope();
    }

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (x, centre, causal, plan) = ((Tensor)vars[0], (bool)vars[1], (bool)vars[2], (KernelPlan)vars[3]);
        var (y, saved) = Forward(x, centre, causal, plan);
        ctx.save_for_backward(saved);
        ctx.save_data("centre", centre);
        ctx.save_data("plan", plan);
        return y;
    }

    /// <summary>
    /// y for x and what <see cref="Gradient"/> needs (<see cref="SavedCount"/> tensors: y, the token norms, the floored scale, the
    /// largest norm's token and where the scale is above the floor), all in the caller's dispose scope.
    /// </summary>
    internal static (Tensor Y, List<Tensor> Saved) Forward(Tensor x, bool centre, bool causal, KernelPlan plan)
    {
        using var scope = NewDisposeScope();
        var (y, norms, largest, holder, scale) = Normalized(x, centre, causal, plan);
        var saved = new List<Tensor> { y.detach(), norms, scale, holder, largest.ge(Floor) };
        foreach (var t in saved) t.MoveToOuterDisposeScope();
        return (y.MoveToOuterDisposeScope(), saved);
    }

    /// <summary>How many tensors <see cref="Forward"/> keeps for <see cref="Gradient"/>.</summary>
    internal const int SavedCount = 5;

    /// <summary>y and what the backward needs: token norms, the largest (running) norm, its holder, the floored scale.</summary>
    static (Tensor Y, Tensor Norms, Tensor Largest, Tensor Holder, Tensor Scale) Normalized(Tensor x, bool centre, bool causal, KernelPlan plan)
    {
        if (causal && plan.MaxNormLoopsFor(x) && x.size(-1) > 0) return MaxNormLoops.RunningNormalized(x, centre);   // one pass: no look ahead needed
        if (plan.MaxNormLoopsFor(x) && x.dtype == ScalarType.Float32 && MaxNormZmm.Takes((int)x.size(-1)))
            return MaxNormLoops.SharedNormalized(x, centre);                              // two passes, c never written apart from y
        var (c, norms) = plan.MaxNormLoopsFor(x) ? MaxNormLoops.CentreAndNorm(x, centre) : CentreAndNorm(x, centre);
        // Unmasked: the first token with the largest norm, and that norm ([B, H, 1] each). TorchSharp's max over a dim leaves a
        // native block per call for a .NET finalizer (environment.md, "The C heap"); argmax and gather leave none.
        Tensor largest, holder;
        if (causal) (largest, holder) = norms.cummax(-1);                                // [B, H, N] each
        else
        {
            holder = norms.argmax(-1, keepdim: true);
            largest = norms.gather(-1, holder);
        }
        var scale = largest.clamp_min(Floor);
        return (c.div_(scale.unsqueeze(-1)), norms, largest, holder, scale);            // c is this call's own tensor
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor dy) =>
        new() { Gradient(dy, ctx.get_saved_variables(), (bool)ctx.get_data("centre"), (KernelPlan)ctx.get_data("plan")), null!, null!, null! };

    /// <summary>dx for dy, from the tensors <see cref="Forward"/> kept (the first <see cref="SavedCount"/> of <paramref name="saved"/>).</summary>
    internal static Tensor Gradient(Tensor dy, IReadOnlyList<Tensor> saved, bool centre, KernelPlan plan)
    {
        var (y, norms, scale, holder, active) = (saved[0], saved[1], saved[2], saved[3], saved[4]);
        bool loops = plan.MaxNormLoopsFor(dy, y);
        using var scope = NewDisposeScope();
        if (loops)
            return (scale.size(-1) == 1
                ? MaxNormLoops.SharedScaleGradient(dy, y, norms, scale, holder, active, centre)
                : MaxNormLoops.RunningScaleGradient(dy, y, norms, scale, holder, active, centre)).MoveToOuterDisposeScope();
        // dc_t = α_t·dy_t + β_t·y_t: α = 1/m′, and β carries the maximum's gradient to the token(s) holding it.
        var perToken = loops ? MaxNormLoops.TokenDots(dy, y) : (dy * y).sum(-1);         // [B, H, N]
        // The sequence-wide maximum is one scale shared by all tokens; the running maximum is one per token.
        bool shared = scale.size(-1) == 1;
        var dScale = shared ? perToken.sum(-1, keepdim: true) : perToken;
        var dLargest = (-dScale / scale).mul_(active);                                    // zero where the floor holds
        // ∂n_t/∂c_t = c_t/n_t = y_t·m′/n_t; a token with n_t = 0 gets no gradient (it never holds an active maximum).
        var dNorms = zeros_like(norms).scatter_add_(-1, holder, dLargest);
        var beta = dNorms.mul_(scale / norms.clamp_min(Floor));
        var alpha = scale.reciprocal();
        var dx = loops ? MaxNormLoops.CentredCombination(dy, y, alpha, beta, centre) : CentredCombination(dy, y, alpha, beta, centre);
        return dx.MoveToOuterDisposeScope();
    }

    /// <summary>The reference form of <see cref="MaxNormLoops.CentreAndNorm"/>: tensor ops, any device and dtype.</summary>
    internal static (Tensor Centred, Tensor Norms) CentreAndNorm(Tensor x, bool centre)
    {
        var c = centre ? x - x.mean(new long[] { -1 }, keepdim: true) : x.clone();
        return (c, linalg.vector_norm(c, dims: new long[] { -1 }));
    }

    /// <summary>The reference form of <see cref="MaxNormLoops.CentredCombination"/>.</summary>
    internal static Tensor CentredCombination(Tensor a, Tensor b, Tensor alpha, Tensor beta, bool centre)
    {
        var dc = a * alpha.unsqueeze(-1) + b * beta.unsqueeze(-1);
        return centre ? dc - dc.mean(new long[] { -1 }, keepdim: true) : dc;
    }
}
