using System.Numerics;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.Reference;
using static TorchSharp.torch;
using static FastNotebooks.Attention.Fastmax.Reference.TaylorFeatures;

namespace FastNotebooks.Attention.Fastmax.TensorOps;

/// <summary>
/// Unmasked Fastmax by factorized moments (README.md, "Unmasked"): with φ the packed Taylor features
/// (<see cref="PackedTaylorFeatures"/>), w their weights and v′ = [v, 1], S = Σ_j φ(k̃_j)ᵀ v′_j is one
/// [F, Dv + 1] matrix and [numerator, g]_i = φ(q̃_i)·(w ⊙ S). O(N·F·Dv) work in a few large GEMMs; features
/// exist for one chunk of tokens at a time. Inputs are already normalized (q may carry 1/temperature).
/// Orders 1 and 2 (order 1 in closed form is <see cref="FastmaxFirstOrder"/>; <see cref="FastmaxDispatch"/> chooses). Each piece
/// that has a CPU kernel is chosen by the <see cref="KernelPlan"/>; with <see cref="KernelPlan.TensorOps"/> all of it is libtorch ops.
/// </summary>
public static class FastmaxFactorized
{
    /// <summary>Fewest tokens per unmasked chunk: below this the GEMMs get too thin (large D or many heads).</summary>
    internal const int MinimumTokensPerChunk = 256;

    /// <summary>o [B, H, Nq, Dv] and the denominator g [B, H, Nq] for q [B, H, Nq, D], k [B, H, Nk, D], v [B, H, Nk, Dv].</summary>
    /// <remarks>
    /// Packed features cover orders 1 and 2; for a higher order (a.Length &gt; 3) this runs the same algorithm with gathered
    /// features, <see cref="FactorizedReference.Forward"/>, so the derivation can be followed at every order.
    /// </remarks>
    public static (Tensor Output, Tensor Denominator) Forward(Tensor q, Tensor k, Tensor v, double[] a, int chunk, KernelPlan? plan = null)
    {
        if (a.Length > 3) return FactorizedReference.Forward(q, k, v, a, chunk);
        var (o, g, keyState) = ForwardKeepingState(q, k, v, a, chunk, plan);
        keyState?.Dispose();
        return (o, g);
    }

    /// <summary>
    /// <see cref="Forward"/>, also returning the weighted key state w ⊙ S [B, H, F, Dv + 1] (null for orders above 2)
    /// for <see cref="Backward"/>: O(F·Dv) per head, independent of N, and it spares the backward one pass over the keys.
    /// </summary>
    /// <remarks>
    /// <paramref name="centre"/> and <paramref name="sliceScale"/> [B, H, 1, 1] (order 2 only): raw q, k are centred per token where the
    /// pieces build x̃ and each slice's weights carry s^l (<see cref="PackedTaylorFeatures.CentresRawInputs"/>, <see cref="PackedTaylorFeatures.SliceScale"/>):
    /// the max-norm normalization folded into the kernel (<see cref="FoldedNormalization"/>). The key state is then weighted per slice.
    /// </remarks>
    public static (Tensor Output, Tensor Denominator, Tensor? KeyState) ForwardKeepingState(Tensor q, Tensor k, Tensor v, double[] a, int chunk, KernelPlan? plan = null,
        bool centre = false, Tensor? sliceScale = null)
    {
        plan ??= KernelPlan.TensorOps;
        if (a.Length == 2)
            return centre || sliceScale is not null
                ? throw new ArgumentException("the normalization is folded into the order-2 kernel only", nameof(a))
                : FastmaxFirstOrder.Forward(q, k, v, a, plan);
        var features = new PackedTaylorFeatures((int)q.size(3), a, plan) { CentresRawInputs = centre, SliceScale = sliceScale };
        if (SplitOf(features, q, MinimumTokensPerChunk, Work(features, q, k, v)) is { Splits: true } split)
        {
            var inputs = sliceScale is null ? new[] { q, k, v } : new[] { q, k, v, sliceScale };
            var perHead = InHeadGroups(inputs, split, (t, groupPlan) =>
            {
                var (o1, g1, s1) = ForwardKeepingState(t[0], t[1], t[2], a, chunk, groupPlan, centre, t.Length > 3 ? t[3] : null);
                return new[] { o1, g1, s1! };
            });
            return (perHead[0], perHead[1], perHead[2]);
        }
        using var scope = NewDisposeScope();
        int rows = TokensPerChunk(features, q, chunk);
        Tensor kx, qx;
        using (plan.Time(KernelPlan.Stages.Inputs)) (kx, qx) = (features.KernelInput(k), features.KernelInput(q));
        var weighted = features.Weigh(KeyValueState(features, kx, v, rows, appendOne: true)); // w ⊙ Σ φ(k̃)ᵀ[v, 1]: [B, H, F, Dv + 1]
        // [numerator, g] = φ(q̃)·(w ⊙ S), chunk by chunk where the features are built as rows.
        Tensor o, g;
        int queryRows = WholeOr(rows < qx.size(2) && plan.ProjectsInCache(features, qx, weighted), qx, rows);
        if (queryRows >= qx.size(2)) (o, g) = plan.ProjectAndDivide(features, qx, weighted);   // one call: the division fused where the kernel can
        else
        {
            var products = Chunks(qx, queryRows).Select(qc => features.Project(qc, weighted)).ToList();   // [B, H, c, Dv + 1]
            (o, g) = plan.Divide(Joined(products), v.size(3));
        }
        return (o.MoveToOuterDisposeScope(), g.MoveToOuterDisposeScope(), weighted.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Gradients for dL/do, recomputing the moments (README.md, "Backward"). With Ĝ_i = dO_i / g_i,
    /// r_i = Ĝ_i·o_i and Ĝ′ = [Ĝ, −r], dL/ds_ij = f′(s_ij)·(Ĝ′_i·v′_j). With the key state S = Σ_j φ(k̃_j)ᵀ v′_j
    /// and the query state R = Σ_i φ(q̃_i)ᵀ Ĝ′_i (both [F, Dv + 1]): dq_i = ∇_q Σ_c Ĝ′_ic φ(q̃_i)·(w ⊙ S)_c,
    /// dk_j = ∇_k Σ_c v′_jc φ(k̃_j)·(w ⊙ R)_c (<see cref="PackedTaylorFeatures.Gradient"/>), and
    /// dv_j = φ(k̃_j)·(w ⊙ R)[:, :Dv] since R's first Dv columns are Σ_i φ(q̃_i)ᵀ Ĝ_i. The key state is the
    /// forward's (<see cref="ForwardKeepingState"/>) when given, else recomputed.
    /// </summary>
    /// <remarks>
    /// With <paramref name="centre"/> and <paramref name="sliceScale"/> (as in <see cref="ForwardKeepingState"/>, whose key state this
    /// then takes), dq and dk are the gradients with respect to the raw q and k through the centring, the scale held fixed: the
    /// scale's own gradient is <see cref="FoldedNormalization"/>'s.
    /// </remarks>
    public static (Tensor Dq, Tensor Dk, Tensor Dv) Backward(
        Tensor q, Tensor k, Tensor v, Tensor o, Tensor g, Tensor gradOutput, double[] a, int chunk, Tensor? keyState = null, KernelPlan? plan = null,
        bool centre = false, Tensor? sliceScale = null)
    {
        plan ??= KernelPlan.TensorOps;
        if (a.Length == 2)
            return centre || sliceScale is not null
                ? throw new ArgumentException("the normalization is folded into the order-2 kernel only", nameof(a))
                : FastmaxFirstOrder.Backward(q, k, v, o, g, gradOutput, a, keyState, plan);
        var features = new PackedTaylorFeatures((int)q.size(3), a, plan) { CentresRawInputs = centre, SliceScale = sliceScale };
        if (SplitOf(features, q, MinimumTokensPerChunk, 2 * Work(features, q, k, v)) is { Splits: true } split)
        {
            var inputs = new List<Tensor> { q, k, v, o, g, gradOutput };
            if (sliceScale is not null) inputs.Add(sliceScale);
            if (keyState is not null) inputs.Add(keyState);
            int scaleAt = sliceScale is null ? -1 : 6, stateAt = keyState is null ? -1 : inputs.Count - 1;
            var perHead = InHeadGroups(inputs.ToArray(), split, (t, groupPlan) =>
            {
                var (dq1, dk1, dv1) = Backward(t[0], t[1], t[2], t[3], t[4], t[5], a, chunk, stateAt < 0 ? null : t[stateAt], groupPlan,
                    centre, scaleAt < 0 ? null : t[scaleAt]);
                return new[] { dq1, dk1, dv1 };
            });
            return (perHead[0], perHead[1], perHead[2]);
        }
        using var scope = NewDisposeScope();
        int rows = TokensPerChunk(features, q, chunk);
        var (_, gPrime) = plan.ScaledOutputGradients(o, g, gradOutput);
        Tensor qx, kx;
        using (plan.Time(KernelPlan.Stages.Inputs)) (qx, kx) = (features.KernelInput(q), features.KernelInput(k));
        long dv = v.size(3);

        // [v, 1] is given as v wherever it is a factor (appendOne): the kernels add the ones in cache, the tensor-op forms append them.
        keyState ??= features.Weigh(KeyValueState(features, kx, v, rows, appendOne: true));   // w ⊙ S [B, H, F, Dv + 1]
        var queryState = features.Weigh(KeyValueState(features, qx, gPrime, rows)); // w ⊙ R [B, H, F, Dv + 1]
        var valueState = queryState.narrow(-1, 0, dv);                                // [B, H, F, Dv]

        bool chunked = rows < qx.size(2) || rows < kx.size(2);
        int queryRows = WholeOr(chunked && plan.ProjectsInCache(features, qx, keyState, gPrime), qx, rows);
        var dq = Joined(Chunks(qx, queryRows).Zip(Chunks(gPrime, queryRows))
            .Select(t => features.Gradient(t.First, t.Second, keyState)).ToList());
        var dk = new List<Tensor>();
        var dvParts = new List<Tensor>();
        int keyRows = WholeOr(chunked && plan.ProjectsInCache(features, kx, queryState, v, appendOne: true) && plan.ProjectsInCache(features, kx, valueState), kx, rows);
        foreach (var (kc, vc) in Chunks(kx, keyRows).Zip(Chunks(v, keyRows)))
        {
            using var step = NewDisposeScope();
            dk.Add(features.Gradient(kc, vc, queryState, appendOne: true).MoveToOuterDisposeScope());
            dvParts.Add(features.Project(kc, valueState).MoveToOuterDisposeScope());
        }
        return (dq.MoveToOuterDisposeScope(), Joined(dk).MoveToOuterDisposeScope(), Joined(dvParts).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// All of x's tokens as one chunk when <paramref name="whole"/> (the CPU kernels that build no features; asked only when
    /// there would be several chunks), else <paramref name="rows"/>.
    /// </summary>
    static int WholeOr(bool whole, Tensor x, int rows) => whole ? (int)Math.Max(1, x.size(2)) : rows;

    /// <summary>Σ_j φ(x̃_j)ᵀ u_j over all tokens of an extended x [B, H, N, ·] and u [B, H, N, C]: [B, H, F, C].</summary>
    /// <remarks>With <paramref name="appendOne"/>, u [B, H, N, C − 1] stands for [u, 1] (<see cref="KernelPlan.StateTransposed"/>).</remarks>
    internal static Tensor KeyValueState(PackedTaylorFeatures features, Tensor extended, Tensor u, int rows, bool appendOne = false)
    {
        using var scope = NewDisposeScope();
        Tensor? state = null;
        // uᵀ·φ [C, F] rather than φᵀ·u [F, C]: the same product, but BLAS runs it markedly faster (measured). Chunk by chunk
        // unless the features are built in cache anyway.
        if (features.Plan.StatesInCache(features, extended, u)) state = features.StateTransposed(extended, u, appendOne);
        else
            foreach (var (xc, uc) in Chunks(extended, rows).Zip(Chunks(u, rows)))
            {
                using var step = NewDisposeScope();
                Accumulate(ref state, features.StateTransposed(xc, uc, appendOne).MoveToOuterDisposeScope());
            }
        // Contiguous, so w ⊙ S and its column views have unit-stride rows, as SimdGemm takes them (a small copy).
        return state!.transpose(-1, -2).contiguous().MoveToOuterDisposeScope();  // [B, H, F, C]
    }

    /// <summary>Chunk length for the unmasked path: the caller's chunk, grown until one chunk holds about <see cref="KernelPlan.FeatureChunkElements"/> features.</summary>
    internal static int TokensPerChunk(PackedTaylorFeatures features, Tensor x, int chunk)
    {
        long heads = x.size(0) * x.size(1), n = Math.Max(1, x.size(2));
        long budget = features.Plan.FeatureChunkElements / Math.Max(1, heads * features.Size);
        long longest = Math.Clamp(Math.Max(Math.Max(chunk, budget), MinimumTokensPerChunk), 1, n);
        long chunks = (n + longest - 1) / longest;
        return (int)((n + chunks - 1) / chunks);   // equal chunks: 1024 tokens as 2 × 512, not 934 + 90
    }

    /// <summary>
    /// How many (batch, head) slices to run together so one feature chunk stays near
    /// <see cref="KernelPlan.FeatureChunkElements"/>: all of them when their chunks fit; else as many whole sequences as fit
    /// (short sequences in large batches: one head at a time would be B·H tiny GEMMs); else one at a time, each with
    /// full-size chunks (B·H = 32 at D = 32 would otherwise leave 29 tokens per chunk, or an 18 MB chunk at 256).
    /// </summary>
    internal static long HeadsPerGroup(PackedTaylorFeatures features, Tensor x, long tokens)
    {
        long heads = x.size(0) * x.size(1), n = Math.Max(1, x.size(2));
        long budget = features.Plan.FeatureChunkElements;
        if (heads * features.Size * Math.Min(tokens, n) <= budget) return heads;
        return Math.Clamp(budget / (features.Size * n), 1, heads);
    }

    /// <summary>
    /// How a kernel's (batch, head) slices run: <see cref="Group"/> of the <see cref="Heads"/> at a time, on
    /// <see cref="Threads"/> threads (<see cref="HeadThreads"/>). <see cref="ShareBudget"/> when the groups are there only for
    /// the threads: each group then gets its heads' share of the working-set budget, so every head is cut into the same
    /// chunks as with all heads together, and the results do not depend on the thread count.
    /// </summary>
    internal readonly record struct HeadSplit(KernelPlan Plan, long Heads, long Group, int Threads, bool ShareBudget)
    {
        public bool Splits => Group < Heads;

        /// <summary>The plan a group of <paramref name="size"/> heads runs with.</summary>
        public KernelPlan PlanFor(long size) =>
            ShareBudget ? Plan.WithFeatureChunkElements(Math.Max(1, Plan.FeatureChunkElements * size / Heads)) : Plan;
    }

    /// <summary>
    /// The heads in groups of <see cref="HeadsPerGroup"/> when one chunk cannot hold them all, those groups on as many threads
    /// as <see cref="TokenLoops.ThreadsFor"/> gives <paramref name="work"/> (one on a head-group thread, whose libtorch count is 1);
    /// else, with the CPU kernels and more than one thread,
    /// one group per thread (<see cref="HeadSplit.ShareBudget"/>); else all together.
    /// </summary>
    internal static HeadSplit SplitOf(PackedTaylorFeatures features, Tensor x, long tokens, double work)
    {
        long heads = x.size(0) * x.size(1), group = HeadsPerGroup(features, x, tokens);
        // Groups for the threads: those of HeadsPerGroup, or single heads when all fit together.
        long groups = group < heads ? (heads + group - 1) / group : heads;
        int threads = features.Plan.CpuKernels ? TokenLoops.ThreadsFor(groups, work) : 1;
        if (group < heads) return new(features.Plan, heads, group, threads, false);
        return threads <= 1 ? new(features.Plan, heads, heads, 1, false) : new(features.Plan, heads, (heads + threads - 1) / threads, threads, true);
    }

    /// <summary>True when <see cref="HeadsPerGroup"/> splits the heads (whatever the threads).</summary>
    internal static bool SplitHeads(PackedTaylorFeatures features, Tensor x, long tokens) =>
        HeadsPerGroup(features, x, tokens) < x.size(0) * x.size(1);

    /// <summary>Multiply-adds of one pass of the factorized kernel: (Nq + Nk) tokens of every head against an [F, Dv + 1] state.</summary>
    internal static double Work(PackedTaylorFeatures features, Tensor q, Tensor k, Tensor v) =>
        (double)q.size(0) * q.size(1) * (q.size(2) + k.size(2)) * features.Size * (v.size(3) + 1);

    /// <summary>
    /// Runs <paramref name="kernel"/> on groups of <see cref="HeadSplit.Group"/> (batch, head) slices, each shaped
    /// [1, group, ...], of the inputs [B, H, ...], with the group's plan, on the split's threads, and joins its outputs back to
    /// [B, H, ...]. A group's sequences fit one feature chunk together, so the kernel does not split them again. Each thread
    /// copies its group's outputs into their slices of the joined outputs as soon as the group is done, while they are in
    /// cache and beside the other threads' work, rather than one concatenation after all groups (PERF.md, "Head groups joined by
    /// their threads").
    /// </summary>
    internal static Tensor[] InHeadGroups(Tensor[] inputs, HeadSplit split, Func<Tensor[], KernelPlan, Tensor[]> kernel)
    {
        using var scope = NewDisposeScope();
        long b = inputs[0].size(0), h = inputs[0].size(1), heads = b * h;
        var flat = inputs.Select(x => x.flatten(0, 1)).ToArray();                  // [B·H, ...]
        var groups = new List<(Tensor[] Inputs, long Start, long Size)>();
        for (long i = 0; i < heads; i += split.Group)
        {
            long size = Math.Min(split.Group, heads - i);
            groups.Add((flat.Select(x => x.narrow(0, i, size).unsqueeze(0)).ToArray(), i, size)); // [1, size, ...]
        }
        // The views are made here, in this scope; what a worker thread makes belongs to no scope and is attached below.
        var gate = new object();
        Tensor[]? joined = null;                                                      // [1, B·H, ...] each, made by the first group done
        try
        {
            HeadThreads.Run(groups.Count, split.Threads, JoinGroup);
        }
        catch
        {
            foreach (var t in joined ?? []) t.Dispose();
            throw;
        }
        foreach (var t in joined!) scope.Attach(t);
        return joined.Select(t => t.unflatten(1, new[] { b, h }).squeeze(0).MoveToOuterDisposeScope()).ToArray();

        int JoinGroup(int g)
        {
            var (groupInputs, start, size) = groups[g];
            var parts = kernel(groupInputs, split.PlanFor(size));
            try
            {
                lock (gate)
                    joined ??= parts.Select(p =>
                    {
                        var shape = p.Shape().ToArray();
                        shape[1] = heads;
                        return empty(shape, dtype: p.dtype, device: p.device);
                    }).ToArray();
                for (int j = 0; j < parts.Length; j++)
                {
                    using var slice = joined[j].narrow(1, start, size);
                    slice.copy_(parts[j]);
                }
            }
            finally
            {
                foreach (var part in parts) part.Dispose();
            }
            return 0;
        }
    }

    /// <summary>
    /// Ĝ = dO / g and Ĝ′ = [Ĝ, −Ĝ·o] by tensor ops: Ĝ′·[v, 1] = Ĝ·(v − o) is dL/df up to the factor f′. The reference of
    /// <see cref="TokenLoops.ScaledOutputGradients"/> (five passes over [B, H, Nq, Dv] and a concatenation).
    /// </summary>
    internal static (Tensor GHat, Tensor GPrime) ScaledOutputGradientsByTensorOps(Tensor o, Tensor g, Tensor gradOutput)
    {
        var gHat = gradOutput / g.unsqueeze(-1);          // [B, H, Nq, Dv]
        using var r = (gHat * o).sum(-1, keepdim: true);  // [B, H, Nq, 1]
        using var minusR = -r;
        return (gHat, cat(new[] { gHat, minusR }, -1));   // [B, H, Nq, Dv + 1]
    }

    /// <summary>[..., Dv + 1] rows of [numerator, g] → o = numerator / g and g.</summary>
    internal static (Tensor Output, Tensor Denominator) OutputAndDenominator(Tensor numeratorAndDenominator, long dv)
    {
        var g = numeratorAndDenominator.select(-1, dv);
        return (numeratorAndDenominator.narrow(-1, 0, dv) / g.unsqueeze(-1), g);
    }

    internal static void Accumulate(ref Tensor? sum, Tensor term)
    {
        if (sum is null) sum = term;
        else sum.AddInPlace(term);
    }

    /// <summary>Per-chunk results joined along the tokens (dim 2); one chunk's result as it is (a copy of the whole output otherwise).</summary>
    internal static Tensor Joined(IReadOnlyList<Tensor> parts) => parts.Count == 1 ? parts[0] : cat(parts.ToArray(), 2);

    /// <summary>Views of consecutive token chunks along dim 2.</summary>
    internal static IEnumerable<Tensor> Chunks(Tensor x, int chunk, long start = 0, long end = -1)
    {
        if (end < 0) end = x.size(2);
        for (long i = start; i < end; i += chunk)
            yield return x.narrow(2, i, Math.Min(chunk, end - i));
    }
}
