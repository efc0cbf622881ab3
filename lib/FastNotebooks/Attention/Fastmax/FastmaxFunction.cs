using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax;

/// <summary>
/// The Fastmax kernel as one autograd node: o = Σ_j f(q_i·k_j) v_j / Σ_j f(q_i·k_j) on already-normalized
/// q, k. Forward keeps q, k, v, o and the denominator g (O(N·D) per head) and the key state the kernel made on the way
/// (unmasked one F × (Dv + 1) state per head; causal, orders 1 and 2 on <see cref="TensorOps.FastmaxChunked"/>, the state before
/// each chunk, F·(Dv + 1) / chunk numbers a token per head); backward recomputes the rest of the moments
/// (<see cref="FastmaxDispatch.Backward"/>). Normalization
/// and temperature are applied before this function, so autograd differentiates them; the functional call runs the max-norms,
/// temperature and kernel as one node instead (<see cref="NormalizedFastmaxFunction"/>), with this node's steps.
/// </summary>
public sealed class FastmaxFunction : autograd.SingleTensorFunction<FastmaxFunction>
{
    public override string Name => "Fastmax";

    /// <summary>Test hook: receives the shapes of the tensors each forward saves for backward.</summary>
    internal static Action<IReadOnlyList<long[]>>? SavedShapesObserver;

    /// <summary>
    /// o [B, H, Nq, Dv] for q [B, H, Nq, D], k [B, H, Nk, D], v [B, H, Nk, Dv], coefficients a_0..a_p, computed by the
    /// kernel <see cref="FastmaxDispatch"/> picks for a resolved <paramref name="backend"/> and its <paramref name="plan"/>.
    /// </summary>
    public static Tensor Apply(Tensor q, Tensor k, Tensor v, double[] coefficients, bool causal, int chunk, FastmaxBackend backend, KernelPlan plan) =>
        apply(q, k, v, coefficients, causal, chunk, backend, plan);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (q, k, v) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2]);
        var (a, causal, chunk) = ((double[])vars[3], (bool)vars[4], (int)vars[5]);
        var (backend, plan) = ((FastmaxBackend)vars[6], (KernelPlan)vars[7]);
        // The weighted key state (unmasked) or states (causal, one a chunk) are kept too: the backward would otherwise recompute them.
        var (o, g, keyState) = FastmaxDispatch.Forward(backend, plan, q, k, v, a, causal, chunk, forBackward: true);
        var saved = new List<Tensor> { q, k, v, o, g };
        if (keyState is not null) saved.Add(keyState);
        ctx.save_for_backward(saved);
        SaveKernelData(ctx, a, causal, chunk, backend, plan);
        SavedShapesObserver?.Invoke(saved.Select(t => t.Shape()).ToList());
        return o;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var (dq, dk, dv) = KernelBackward(ctx, saved, gradOutput, saved.Count > 5 ? saved[5] : null);
        return new List<Tensor> { dq, dk, dv, null!, null!, null!, null!, null! };
    }

    /// <summary>What the kernel's backward needs besides tensors, kept by a node that runs the kernel (this one, <see cref="NormalizedFastmaxFunction"/>).</summary>
    internal static void SaveKernelData(autograd.AutogradContext ctx, double[] a, bool causal, int chunk, FastmaxBackend backend, KernelPlan plan)
    {
        ctx.save_data("a", a);
        ctx.save_data("causal", causal);
        ctx.save_data("chunk", chunk);
        ctx.save_data("backend", backend);
        ctx.save_data("plan", plan);
    }

    /// <summary>dq, dk, dv of the kernel from the node's saved q, k, v, o, g (the first five of <paramref name="saved"/>) and <see cref="SaveKernelData"/>.</summary>
    internal static (Tensor Dq, Tensor Dk, Tensor Dv) KernelBackward(autograd.AutogradContext ctx, IReadOnlyList<Tensor> saved, Tensor gradOutput, Tensor? keyState) =>
        FastmaxDispatch.Backward((FastmaxBackend)ctx.get_data("backend"), (KernelPlan)ctx.get_data("plan"),
            saved[0], saved[1], saved[2], saved[3], saved[4], gradOutput, (double[])ctx.get_data("a"), (bool)ctx.get_data("causal"),
            (int)ctx.get_data("chunk"), keyState);
}
