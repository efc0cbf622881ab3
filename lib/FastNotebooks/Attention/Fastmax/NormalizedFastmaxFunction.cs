using TorchSharp;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax;

/// <summary>
/// The max-norm normalization of q and k, the temperature and the Fastmax kernel as one autograd node: the same steps, in the
/// same order and on the same tensors, as <see cref="MaxNormFunction"/> on q and on k, a division by T, then
/// <see cref="FastmaxFunction"/> — three or four nodes, whose bookkeeping a forward + backward paid each time (PERF.md,
/// "Normalization and kernel in one node"). Forward keeps what
/// the kernel keeps (q̂, k̂, v, o, g and the weighted key state or states, <see cref="FastmaxFunction"/>) and what each normalization keeps (O(N) per head);
/// backward runs the kernel's backward, then each normalization's. Where the normalization folds into the kernel
/// (<see cref="FastmaxDispatch.FoldsNormalization"/>) <see cref="FoldedNormalization"/> runs instead; which of the two, or the
/// separate nodes, is <see cref="FastmaxDispatch.JoinsNormalization"/>'s choice.
/// </summary>
public sealed class NormalizedFastmaxFunction : autograd.SingleTensorFunction<NormalizedFastmaxFunction>
{
    public override string Name => "FastmaxWithMaxNorm";

    /// <summary>
    /// o [B, H, Nq, Dv] for raw q [B, H, Nq, D], k [B, H, Nk, D], v [B, H, Nk, Dv]: q and k max-normalized (centred when
    /// <paramref name="centre"/>; by their running largest norm when <paramref name="causal"/>), q̂ divided by
    /// <paramref name="temperature"/>, then the kernel <see cref="FastmaxDispatch"/> picks for <paramref name="backend"/> and <paramref name="plan"/>.
    /// </summary>
    public static Tensor Apply(Tensor q, Tensor k, Tensor v, double[] coefficients, bool causal, int chunk, FastmaxBackend backend, KernelPlan plan,
        bool centre, double temperature) =>
        apply(q, k, v, coefficients, causal, chunk, backend, plan, centre, temperature);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (q, k, v) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2]);
        var (a, causal, chunk) = ((double[])vars[3], (bool)vars[4], (int)vars[5]);
        var (backend, plan, centre, temperature) = ((FastmaxBackend)vars[6], (KernelPlan)vars[7], (bool)vars[8], (double)vars[9]);
        using var scope = NewDisposeScope();
        var (qHat, queryNorm) = MaxNormFunction.Forward(q, centre, causal, plan);
        var (kHat, keyNorm) = MaxNormFunction.Forward(k, centre, causal, plan);
        if (temperature != 1.0) qHat = qHat / temperature;
        var (qIn, kIn, vIn) = (qHat.contiguous(), kHat.contiguous(), v.contiguous());
        var (o, g, keyState) = FastmaxDispatch.Forward(backend, plan, qIn, kIn, vIn, a, causal, chunk, forBackward: true);
        // [the kernel's q̂, k̂, v, o, g], the query normalization's, the key normalization's, [the weighted key state(s), where the kernel keeps them].
        var saved = new List<Tensor> { qIn, kIn, vIn, o, g };
        saved.AddRange(queryNorm);
        saved.AddRange(keyNorm);
        if (keyState is not null) saved.Add(keyState);
        foreach (var t in saved) t.MoveToOuterDisposeScope();   // o among them: moved out once, returned as it is
        ctx.save_for_backward(saved);
        FastmaxFunction.SaveKernelData(ctx, a, causal, chunk, backend, plan);
        ctx.save_data("centre", centre);
        ctx.save_data("temperature", temperature);
        FastmaxFunction.SavedShapesObserver?.Invoke(saved.Select(t => t.Shape()).ToList());
        return o;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        const int kernel = 5, norm = MaxNormFunction.SavedCount;
        var (plan, centre, temperature) = ((KernelPlan)ctx.get_data("plan"), (bool)ctx.get_data("centre"), (double)ctx.get_data("temperature"));
        using var scope = NewDisposeScope();
        var (dqHat, dkHat, dv) = FastmaxFunction.KernelBackward(ctx, saved, gradOutput, saved.Count > kernel + 2 * norm ? saved[kernel + 2 * norm] : null);
        if (temperature != 1.0) dqHat = dqHat / temperature;
        var dq = MaxNormFunction.Gradient(dqHat, saved.Skip(kernel).Take(norm).ToList(), centre, plan);
        var dk = MaxNormFunction.Gradient(dkHat, saved.Skip(kernel + norm).Take(norm).ToList(), centre, plan);
        return new List<Tensor> { dq.MoveToOuterDisposeScope(), dk.MoveToOuterDisposeScope(), dv.MoveToOuterDisposeScope(), null!, null!, null!, null!, null!, null!, null! };
    }
}
