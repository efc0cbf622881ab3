using FastNotebooks.Attention.Fastmax.Cpu;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax.TensorOps;

/// <summary>
/// Quadratic-term dropout for p = 2 (README.md beside the kernels, "Dropout"): ordinary inverted dropout on the flattened q⊗q and
/// k⊗k features, in numerator and denominator alike; the constant and linear terms are untouched. Features are
/// random per draw, so this path builds them explicitly (D² per token) and lets autograd differentiate. On the CPU
/// the masks come from <see cref="KeepMask"/> (libtorch's Bernoulli sampling was most of a training step).
/// </summary>
public static class FastmaxDropoutKernel
{
    public static Tensor QuadraticTerm(Tensor q, Tensor k, Tensor v, double[] a, bool causal, double rate, int chunk, KernelPlan? plan = null)
    {
        plan ??= KernelPlan.TensorOps;
        using var scope = NewDisposeScope();
        var phiQ = cat(new[] { full_like(q.narrow(-1, 0, 1), a[0]), a[1] * q, a[2] * DroppedSquare(q, rate, plan) }, -1);
        var phiK = cat(new[] { ones_like(k.narrow(-1, 0, 1)), k, DroppedSquare(k, rate, plan) }, -1);
        return FeatureMapAttention.Forward(phiQ, phiK, v, causal, chunk).MoveToOuterDisposeScope();
    }

    static Tensor DroppedSquare(Tensor x, double rate, KernelPlan plan)
    {
        var shape = x.Shape().ToArray();
        shape[^1] = x.size(-1) * x.size(-1);
        var square = (x.unsqueeze(-1) * x.unsqueeze(-2)).reshape(shape);  // [B, H, N, D²]
        if (!plan.KeepMaskFor(square))
            return nn.functional.dropout(square, rate, training: true);
        using var mask = KeepMask.Draw(shape, 1 - rate, square.dtype);
        return square * mask;
    }
}
