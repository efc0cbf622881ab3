using FastNotebooks.Attention.Fastmax.Cpu;
using Triangle = FastNotebooks.Attention.Fastmax.Cpu.SimdGemm.Triangle;
using FastNotebooks.Attention.Fastmax.Reference;
using static TorchSharp.torch;
using static FastNotebooks.Attention.Fastmax.TensorOps.FastmaxFactorized;
using static FastNotebooks.Attention.Fastmax.Reference.TaylorFeatures;

namespace FastNotebooks.Attention.Fastmax.TensorOps;

/// <summary>
/// Causal Fastmax in chunks (README.md, "Causal"): query i sees keys j ≤ off + i, off = Nk − Nq. Query chunk
/// [i0, i1) meets the keys before off + i0 through a running state S = Σ φ(k̃_j)ᵀ[v_j, 1] (packed features,
/// <see cref="PackedTaylorFeatures"/>; weights applied to the state) and the keys of its
/// own window [off + i0, off + i1) through a dense chunk×chunk block with a lower-triangular mask. The
/// N·D^(p+1) prefix sums are never materialized: working memory is O(chunk·F + F·Dv) per head (the states before each chunk,
/// F·(Dv + 1) numbers a chunk, are kept only for a backward: <see cref="KeyStates"/>). Chunks go in groups of G
/// (G·chunk·F ≈ <see cref="KernelPlan.FeatureChunkElements"/>): one batched op serves G chunks, and the
/// state before each chunk of a group is an exclusive cumulative sum of the group's chunk states plus the carry.
/// Orders 1 and 2 (<see cref="FastmaxDispatch"/> sends order 3 to <see cref="ChunkedReference"/>); each piece that has a CPU
/// kernel is chosen by the <see cref="KernelPlan"/>.
/// </summary>
public static class FastmaxChunked
{
    /// <summary>
    /// The chunk length used when <see cref="FastmaxOptions.ChunkSize"/> is not set: 64 tokens up to F = 256 features
    /// (D ≤ 21 at p = 2; and for every other order), 128 up to F = 1024 (D ≤ 44), 256 beyond. Larger states make each chunk's
    /// state traffic dearer against its c × c block. The steps are where the measured forward + backward was fastest (PERF.md).
    /// </summary>
    public static int DefaultChunk(int order, int d)
    {
        if (order != 2) return 64;
        long features = TaylorFeatures.Size(d, order);
        return features <= 256 ? 64 : features <= 1024 ? 128 : 256;
    }

    /// <summary>
    /// o [B, H, Nq, Dv] and the denominator g [B, H, Nq]. Packed features cover orders 1 and 2; for a higher order this runs
    /// the same algorithm with gathered features (<see cref="ChunkedReference.Forward"/>).
    /// </summary>
    /// <remarks>
    /// With <paramref name="keyStates"/> (<see cref="KeyStates"/>'s shape, orders 1 and 2) the weighted key state before each chunk,
    /// which the forward makes anyway, is written there for <see cref="Backward"/>, which then need not make it again.
    /// </remarks>
    public static (Tensor Output, Tensor Denominator) Forward(Tensor q, Tensor k, Tensor v, double[] a, int chunk, KernelPlan? plan = null,
        Tensor? keyStates = null)
    {
        if (a.Length > 3)
            return keyStates is null
                ? ChunkedReference.Forward(q, k, v, a, chunk)
                : throw new ArgumentException("the chunked kernel keeps its key states for orders 1 and 2 only", nameof(keyStates));
        plan ??= KernelPlan.TensorOps;
        var features = new PackedTaylorFeatures((int)q.size(3), a, plan);
        RequireKeyStates(keyStates, features, q, v, chunk);
        if (SplitOf(features, q, chunk, Work(features, q, k, v)) is { Splits: true } split)
        {
            var inputs = keyStates is null ? new[] { q, k, v } : new[] { q, k, v, keyStates };   // each group writes its heads' states
            var perHead = InHeadGroups(inputs, split, (t, groupPlan) =>
            {
                var (o1, g1) = Forward(t[0], t[1], t[2], a, chunk, groupPlan, t.Length > 3 ? t[3] : null);
                return new[] { o1, g1 };
            });
            return (perHead[0], perHead[1]);
        }
        using var scope = NewDisposeScope();
        long nq = q.size(2), offset = k.size(2) - nq;
        Tensor qx, kx;
        using (plan.Time(KernelPlan.Stages.Inputs)) (qx, kx) = (features.KernelInput(q), features.KernelInput(k));
        // [v, 1] is never copied: the states take v with their column of ones added in cache, the blocks their row sums.
        var carry = InitialState(features, kx, v, offset, TokensPerChunk(features, k, chunk), appendOne: true); // [B, H, Dv + 1, F]

        // Each group's rows [numerator, g] go straight to their tokens of o and g while in cache: no joined copy of all rows.
        long dv = v.size(3);
        var o = empty(new[] { q.size(0), q.size(1), nq, dv }, dtype: v.dtype, device: v.device);
        var g = empty(new[] { q.size(0), q.size(1), nq }, dtype: v.dtype, device: v.device);
        foreach (var (start, count, size) in Groups(features, q, chunk))
        {
            using var step = NewDisposeScope();
            var (qb, kb, vb) = (Blocks(q, start, count, size), Blocks(k, offset + start, count, size), Blocks(v, offset + start, count, size));
            // Above the diagonal left unwritten: the masked polynomial writes the zeros there (in both its forms).
            var scores = plan.MatMul(qb, plan.Transposed(kb), Triangle.LowerOutputUnwritten);   // [B, H, G, c, c]
            var within = plan.WithinChunks(scores, a, vb);                                // tril f(s)·[v, 1]: [B, H, G, c, Dv + 1]
            var qxb = Blocks(qx, start, count, size);
            // Kept states go straight to their chunks of keyStates where the projection reads them there as they lie; libtorch's
            // products may round differently on that layout, so elsewhere they are the group's own, copied in.
            var kept = keyStates?.narrow(2, start / chunk, count);                                        // [B, H, G, Dv + 1, F]
            bool inPlace = kept is not null && plan.ProjectsInCache(features, qxb, kept.transpose(-1, -2));
            var before = ChunkStates(features, Blocks(kx, offset + start, count, size), vb, carry, reverse: false, inPlace ? kept : null, appendOne: true); // [B, H, G, F, Dv + 1]
            if (kept is not null && !inPlace) kept.copy_(before.transpose(-1, -2));
            plan.AddThenDivide(within, features.Project(qxb, before), o.narrow(2, start, count * size), g.narrow(2, start, count * size));
        }
        return (o.MoveToOuterDisposeScope(), g.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Gradients for dL/do with prefix key states for dq (keys before the chunk) and suffix query states for
    /// dk, dv (queries after the chunk), as in <see cref="FastmaxFactorized.Backward"/>, plus the dense masked
    /// block inside each chunk; G chunks per batched op. The prefix key states are the forward's where it kept them
    /// (<paramref name="keyStates"/>, see <see cref="Forward"/>), else made again from the keys.
    /// </summary>
    public static (Tensor Dq, Tensor Dk, Tensor Dv) Backward(
        Tensor q, Tensor k, Tensor v, Tensor o, Tensor g, Tensor gradOutput, double[] a, int chunk, KernelPlan? plan = null, Tensor? keyStates = null)
    {
        plan ??= KernelPlan.TensorOps;
        var features = new PackedTaylorFeatures((int)q.size(3), a, plan);
        RequireKeyStates(keyStates, features, q, v, chunk);
        if (SplitOf(features, q, chunk, 2 * Work(features, q, k, v)) is { Splits: true } split)
        {
            var inputs = new List<Tensor> { q, k, v, o, g, gradOutput };
            if (keyStates is not null) inputs.Add(keyStates);
            var perHead = InHeadGroups(inputs.ToArray(), split, (t, groupPlan) =>
            {
                var (dq1, dk1, dv1) = Backward(t[0], t[1], t[2], t[3], t[4], t[5], a, chunk, groupPlan, t.Length > 6 ? t[6] : null);
                return new[] { dq1, dk1, dv1 };
            });
            return (perHead[0], perHead[1], perHead[2]);
        }
        using var scope = NewDisposeScope();
        var b = Derivative(a);
        long nq = q.size(2), offset = k.size(2) - nq, dv = v.size(3);
        var (gHat, gPrime) = plan.ScaledOutputGradients(o, g, gradOutput);
        Tensor qx, kx, vOne;
        using (plan.Time(KernelPlan.Stages.Inputs)) (qx, kx, vOne) = (features.KernelInput(q), features.KernelInput(k), AppendOnes(v));
        var groups = Groups(features, q, chunk).ToArray();
        int rows = TokensPerChunk(features, k, chunk);

        // Each group's gradients are written to their tokens of dq, dk, dv (views) by the products themselves, not joined at the
        // end; the state-sized products add theirs in as they write (addTo), so no product is written and read back to be added.
        var dq = empty(q.Shape(), dtype: q.dtype, device: q.device);
        var dk = empty(k.Shape(), dtype: k.dtype, device: k.device);
        var dV = empty(v.Shape(), dtype: v.dtype, device: v.device);
        var dkWindow = new Tensor[groups.Length];
        var dvWindow = new Tensor[groups.Length];

        // Forward in the sequence: the dense masked block of each chunk, and dq from the keys before the chunk.
        // Made again as the forward makes them (v with its ones added in the state's kernel), so that kept or made again they are the same bits.
        var keyCarry = keyStates is null ? InitialState(features, kx, v, offset, rows, appendOne: true) : null;   // [B, H, Dv + 1, F]
        for (int i = 0; i < groups.Length; i++)
        {
            using var step = NewDisposeScope();
            var (start, count, size) = groups[i];
            var (qb, kb) = (Blocks(q, start, count, size), Blocks(k, offset + start, count, size));
            var (vb, gpb) = (Blocks(vOne, offset + start, count, size), Blocks(gPrime, start, count, size));
            // Both left unwritten above the diagonal, where the masked polynomial writes zeros into both.
            var s = plan.MatMul(qb, plan.Transposed(kb), Triangle.LowerOutputUnwritten);   // [B, H, G, c, c]
            var (f, ds) = plan.MaskedPolynomialAndDerivative(s, plan.MatMul(gpb, plan.Transposed(vb), Triangle.LowerOutputUnwritten), a, b);
            Tensor before;                                                                  // [B, H, G, F, Dv + 1]
            if (keyStates is null) before = ChunkStates(features, Blocks(kx, offset + start, count, size), Blocks(v, offset + start, count, size), keyCarry!, reverse: false, appendOne: true);
            else
            {
                // The forward's, read where they lie by the gradient's kernels; elsewhere in the layout of states made here (as above).
                before = keyStates.narrow(2, start / chunk, count).transpose(-1, -2);
                if (!plan.ProjectsInCache(features, Blocks(qx, start, count, size), before, gpb)) before = before.transpose(-1, -2).contiguous().transpose(-1, -2);
            }
            features.Gradient(Blocks(qx, start, count, size), gpb, before, addTo: plan.MatMul(ds, kb, Triangle.LowerA, into: Blocks(dq, start, count, size)));
            dkWindow[i] = plan.MatMul(ds.transpose(-1, -2), qb, Triangle.UpperA, into: Blocks(dk, offset + start, count, size)).MoveToOuterDisposeScope();
            dvWindow[i] = plan.MatMul(f.transpose(-1, -2), Blocks(gHat, start, count, size), Triangle.UpperA, into: Blocks(dV, offset + start, count, size)).MoveToOuterDisposeScope();
        }

        // Backward in the sequence: dk, dv from the queries after the chunk, R = Σ_i φ(q̃_i)ᵀ Ĝ′_i.
        var queryCarry = zeros(q.size(0), q.size(1), dv + 1, features.Size, dtype: q.dtype, device: q.device);   // [B, H, Dv + 1, F]
        for (int i = groups.Length - 1; i >= 0; i--)
        {
            using var step = NewDisposeScope();
            var (start, count, size) = groups[i];
            var after = ChunkStates(features, Blocks(qx, start, count, size), Blocks(gPrime, start, count, size), queryCarry, reverse: true);
            var kxb = Blocks(kx, offset + start, count, size);
            features.Gradient(kxb, Blocks(vOne, offset + start, count, size), after, addTo: dkWindow[i]);
            features.Project(kxb, after.narrow(-1, 0, dv), addTo: dvWindow[i]);
        }

        // Keys before the first query's window are seen by every query.
        if (offset > 0)
        {
            var weighted = features.Weigh(queryCarry.transpose(-1, -2));
            for (long first = 0; first < offset; first += rows)
            {
                using var step = NewDisposeScope();
                long length = Math.Min(rows, offset - first);
                var (kc, vc) = (kx.narrow(2, first, length), vOne.narrow(2, first, length));
                dk.narrow(2, first, length).copy_(features.Gradient(kc, vc, weighted));
                dV.narrow(2, first, length).copy_(features.Project(kc, weighted.narrow(-1, 0, dv)));
            }
        }
        return (dq.MoveToOuterDisposeScope(), dk.MoveToOuterDisposeScope(), dV.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Σ over the keys before the first query's window of [v, 1]ᵀ·φ(k̃): [B, H, Dv + 1, F] (zeros without a KV offset), for
    /// <paramref name="vOne"/> = [v, 1], or v itself when <paramref name="appendOne"/>.
    /// </summary>
    static Tensor InitialState(PackedTaylorFeatures features, Tensor kx, Tensor vOne, long offset, int rows, bool appendOne = false) =>
        offset > 0
            ? KeyValueState(features, kx.narrow(2, 0, offset), vOne.narrow(2, 0, offset), rows, appendOne).transpose(-1, -2).contiguous()
            : zeros(kx.size(0), kx.size(1), vOne.size(3) + (appendOne ? 1 : 0), features.Size, dtype: kx.dtype, device: kx.device);

    /// <summary>
    /// Weighted states before each chunk of a group, w ⊙ (carry + Σ of the group's earlier chunks) [B, H, G, F, C] (the key
    /// side), or after it, Σ of the later chunks when <paramref name="reverse"/> (the query side), for extended inputs
    /// [B, H, G, c, ·] and u [B, H, G, c, C]; the carry [B, H, C, F] then moves past the group.
    /// </summary>
    /// <remarks>With <paramref name="appendOne"/>, u [B, H, G, c, C − 1] stands for [u, 1].</remarks>
    static Tensor ChunkStates(PackedTaylorFeatures features, Tensor extendedBlocks, Tensor uBlocks, Tensor carry, bool reverse, Tensor? into = null,
        bool appendOne = false) =>
        features.ChunkStates(extendedBlocks, uBlocks, carry, reverse, into, appendOne);       // [B, H, G, F, C]

    /// <summary>
    /// A tensor for the forward's weighted key states before each chunk, [B, H, ⌈Nq / chunk⌉, Dv + 1, F] (the running states'
    /// own layout; <see cref="Backward"/> reads each as its transposed view): F·(Dv + 1) numbers a chunk per head, 145 a token
    /// at D = Dv = 32 and the default chunk of 128.
    /// </summary>
    public static Tensor KeyStates(Tensor q, Tensor v, double[] a, int chunk) =>
        empty(new[] { q.size(0), q.size(1), Chunks(q.size(2), chunk), v.size(3) + 1, new PackedTaylorFeatures((int)q.size(3), a).Size },
            dtype: v.dtype, device: v.device);

    static long Chunks(long n, int chunk) => (n + chunk - 1) / chunk;

    static void RequireKeyStates(Tensor? keyStates, PackedTaylorFeatures features, Tensor q, Tensor v, int chunk)
    {
        if (keyStates is null) return;
        long[] shape = { q.size(0), q.size(1), Chunks(q.size(2), chunk), v.size(3) + 1, features.Size };
        if (!keyStates.Shape().SequenceEqual(shape) || keyStates.dtype != v.dtype)
            throw new ArgumentException(
                $"the key states of this call are [{string.Join(", ", shape)}] {v.dtype}; got [{string.Join(", ", keyStates.Shape())}] {keyStates.dtype}", nameof(keyStates));
    }

    /// <summary>
    /// At most this many feature elements G·c·F·B·H a group (2^20: 14 chunks of 128 tokens at D = 32): a group's chunk states
    /// [G, Dv + 1, F] are written, summed into running states and read back by the projection, and past about a megabyte they
    /// leave the core's cache between those passes. The plan's larger budget made longer causal sequences slower, forward and
    /// backward, at D = 32 and 64 (PERF.md, "Causal groups within the cache").
    /// </summary>
    internal const long GroupElements = 1L << 20;

    /// <summary>
    /// Groups of whole chunks, (start, chunks G, chunk length c), G·c·F·B·H ≈ the smaller of <see cref="KernelPlan.FeatureChunkElements"/>
    /// and <see cref="GroupElements"/>; a last partial chunk forms a group of its own.
    /// </summary>
    static IEnumerable<(long Start, long Count, long Size)> Groups(PackedTaylorFeatures features, Tensor q, int chunk)
    {
        long n = q.size(2), budget = Math.Min(features.Plan.FeatureChunkElements, GroupElements);
        long perGroup = Math.Max(1, budget / Math.Max(1, q.size(0) * q.size(1) * features.Size * chunk));
        for (long start = 0; start < n;)
        {
            long whole = (n - start) / chunk;
            if (whole == 0) { yield return (start, 1, n - start); yield break; }
            long count = Math.Min(whole, perGroup);
            yield return (start, count, chunk);
            start += count * chunk;
        }
    }

    /// <summary>Tokens [start, start + G·c) of x [B, H, N, ·] as G blocks of c: [B, H, G, c, ·] (a view).</summary>
    static Tensor Blocks(Tensor x, long start, long count, long size) =>
        x.narrow(2, start, count * size).unflatten(2, new[] { count, size });
}
