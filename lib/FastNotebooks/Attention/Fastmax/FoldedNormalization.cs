using TorchSharp;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax;

/// <summary>
/// The max-norm normalization folded into the unmasked order-2 kernel. Unmasked, each (batch, head) slice divides every token by
/// one number, its largest norm m: q̂·k̂ = (c_q·c_k)/(m_q·m_k) with c the centred (or raw) tokens, so with σ = 1/(T·m_q·m_k),
/// f(q̂·k̂) = Σ_l a_l σ^l (c_q·c_k)^l: the kernel reads q and k as they are, centres each token where it builds x̃ in cache, and
/// multiplies the weights of degree l by σ^l (<see cref="PackedTaylorFeatures.CentresRawInputs"/>, <see cref="PackedTaylorFeatures.SliceScale"/>).
/// What is left of the normalization is one read of q and k for m (<see cref="MaxNormLoops.LargestNorms"/>); the normalized
/// copies of q and k are never written. Where a gradient is wanted this is one autograd node: the kernel's backward on the same
/// inputs gives the gradients through the centring with σ held fixed, and <see cref="MaxNormLoops.AddScaleGradient"/> adds σ's
/// share through each m. The same function and gradients as <see cref="FastmaxNormalizer"/> then <see cref="FastmaxFunction"/>, up to
/// float32 rounding (FoldedNormalizationTests); PERF.md, "Max-norm folded into the unmasked kernel".
/// </summary>
internal sealed class FoldedNormalization : autograd.SingleTensorFunction<FoldedNormalization>
{
    public override string Name => "FastmaxFoldedMaxNorm";

    /// <summary>
    /// Largest norms m outside [<see cref="SmallestNorm"/>, <see cref="LargestNorm"/>] run the unfolded path instead: the float32
    /// features of c grow as m² and the weights as 1/m², which far outside this range would leave float32's exponent range
    /// (an all-constant input centres to zero and is one of these; the unfolded path floors its scale).
    /// </summary>
    public const double SmallestNorm = 1e-6, LargestNorm = 1e6;

    /// <summary>What the two normalizations found: the largest norms and their tokens, per slice, and what σ is made of.</summary>
    sealed record Norms(bool Centre, double Temperature, double[] Query, long[] QueryHolders, double[] Key, long[] KeyHolders)
    {
        /// <summary>σ = 1/(T·m_q·m_k) per slice [B, H, 1, 1].</summary>
        public Tensor Scale(long b, long h) =>
            tensor(Query.Zip(Key, (mq, mk) => 1 / (Temperature * mq * mk)).ToArray(), dtype: ScalarType.Float64).view(b, h, 1, 1);
    }

    /// <summary>
    /// o [B, H, Nq, Dv], or null where some slice's largest norm lies outside the range above (then the caller runs the
    /// normalization and the kernel apart). The caller has checked <see cref="FastmaxDispatch.FoldsNormalization"/>.
    /// </summary>
    public static Tensor? Attention(Tensor q, Tensor k, Tensor v, FastmaxOptions options, double[] a, int chunk, KernelPlan plan)
    {
        bool centre = options.Normalization == FastmaxNormalization.MeanCentered;
        var largest = BothOn(HeadThreadsFor(q, k, v, a, plan, passes: 1), input => MaxNormLoops.LargestNorms(input == 0 ? q : k, centre));
        var ((mq, hq), (mk, hk)) = (largest[0], largest[1]);
        if (mq.Concat(mk).Any(m => !(m >= SmallestNorm && m <= LargestNorm))) return null;
        var norms = new Norms(centre, options.Temperature, mq, hq, mk, hk);
        if (is_grad_enabled() && (q.requires_grad || k.requires_grad || v.requires_grad))
            return apply(q, k, v, a, chunk, plan, norms);
        using var scope = NewDisposeScope();
        var (o, _, _) = FastmaxFactorized.ForwardKeepingState(q.contiguous(), k.contiguous(), v.contiguous(), a, chunk, plan, centre,
            norms.Scale(q.size(0), q.size(1)));
        return o.MoveToOuterDisposeScope();
    }

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (q, k, v) = (((Tensor)vars[0]).contiguous(), ((Tensor)vars[1]).contiguous(), ((Tensor)vars[2]).contiguous());
        var (a, chunk, plan, norms) = ((double[])vars[3], (int)vars[4], (KernelPlan)vars[5], (Norms)vars[6]);
        var scale = norms.Scale(q.size(0), q.size(1));
        var (o, g, keyState) = FastmaxFactorized.ForwardKeepingState(q, k, v, a, chunk, plan, norms.Centre, scale);
        ctx.save_for_backward(new List<Tensor> { q, k, v, o, g, keyState!, scale });
        ctx.save_data("a", a);
        ctx.save_data("chunk", chunk);
        ctx.save_data("plan", plan);
        ctx.save_data("norms", norms);
        return o;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var (q, k, v, o, g, keyState, scale) = (saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], saved[6]);
        var norms = (Norms)ctx.get_data("norms");
        var (dq, dk, dv) = FastmaxFactorized.Backward(q, k, v, o, g, gradOutput, (double[])ctx.get_data("a"), (int)ctx.get_data("chunk"),
            keyState, (KernelPlan)ctx.get_data("plan"), norms.Centre, scale);
        BothOn(HeadThreadsFor(q, k, v, (double[])ctx.get_data("a"), (KernelPlan)ctx.get_data("plan"), passes: 2), input =>
        {
            if (input == 0) MaxNormLoops.AddScaleGradient(dq, q, norms.Query, norms.QueryHolders, norms.Centre);
            else MaxNormLoops.AddScaleGradient(dk, k, norms.Key, norms.KeyHolders, norms.Centre);
            return true;
        });
        return new List<Tensor> { dq, dk, dv, null!, null!, null!, null! };
    }

    /// <summary>
    /// How many of the dedicated head threads the kernel's pass on these inputs runs on (<see cref="FastmaxFactorized.SplitOf"/>,
    /// the kernel's own choice; <paramref name="passes"/> 2 for the backward).
    /// </summary>
    static int HeadThreadsFor(Tensor q, Tensor k, Tensor v, double[] a, KernelPlan plan, int passes)
    {
        var features = new PackedTaylorFeatures((int)q.size(3), a, plan);
        var split = FastmaxFactorized.SplitOf(features, q, FastmaxFactorized.MinimumTokensPerChunk, passes * FastmaxFactorized.Work(features, q, k, v));
        return split.Splits ? split.Threads : 1;
    }

    /// <summary>
    /// body(0) for q and body(1) for k: on two of the head threads where the kernel's pass runs on two or more (a pass over q or k
    /// is too short for a parallel region of its own: <see cref="TokenLoops.MinWorkPerThread"/>), else one after the other.
    /// </summary>
    static T[] BothOn<T>(int threads, Func<int, T> body) => HeadThreads.Run(2, Math.Min(threads, 2), body);
}
