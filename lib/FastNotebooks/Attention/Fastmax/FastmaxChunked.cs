using static TorchSharp.torch;
using static FastNotebooks.Attention.Fastmax.FastmaxFactorized;
using static FastNotebooks.Attention.Fastmax.TaylorFeatures;

namespace FastNotebooks.Attention.Fastmax;

/// <summary>
/// Causal Fastmax in chunks (README.md, "Causal"): query i sees keys j ≤ off + i, off = Nk − Nq. Query chunk
/// [i0, i1) meets the keys before off + i0 through a running state S = Σ φ(k̃_j)ᵀ[v_j, 1] (packed features,
/// <see cref="PackedTaylorFeatures"/>; weights applied to the state) and the keys of its
/// own window [off + i0, off + i1) through a dense chunk×chunk block with a lower-triangular mask. The
/// N·D^(p+1) prefix sums are never materialized: memory is O(chunk·F + F·Dv) per head. Orders above 2 go to
/// <see cref="FastmaxChunkedGathered"/>.
/// </summary>
public static class FastmaxChunked
{
    /// <summary>o [B, H, Nq, Dv] and the denominator g [B, H, Nq].</summary>
    public static (Tensor Output, Tensor Denominator) Forward(Tensor q, Tensor k, Tensor v, double[] a, int chunk)
    {
        if (a.Length > 3) return FastmaxChunkedGathered.Forward(q, k, v, a, chunk);
        var features = new PackedTaylorFeatures((int)q.shape[3], a);
        if (SplitHeads(features, q, chunk))
        {
            var perHead = PerHead(new[] { q, k, v }, t => { var (o1, g1) = Forward(t[0], t[1], t[2], a, chunk); return new[] { o1, g1 }; });
            return (perHead[0], perHead[1]);
        }
        using var scope = NewDisposeScope();
        long nq = q.shape[2], offset = k.shape[2] - nq;
        var (qx, kx, vOne) = (features.Extend(q), features.Extend(k), AppendOnes(v));
        var state = offset > 0
            ? KeyValueState(features, kx.narrow(2, 0, offset), vOne.narrow(2, 0, offset), TokensPerChunk(features, k, chunk))
            : null;                                                                        // [B, H, F, Dv + 1]

        var rows = new List<Tensor>();
        for (long i0 = 0; i0 < nq; i0 += chunk)
        {
            using var step = NewDisposeScope();
            long c = Math.Min(chunk, nq - i0);
            var qc = q.narrow(2, i0, c);
            var kc = k.narrow(2, offset + i0, c);
            var vc = vOne.narrow(2, offset + i0, c);
            var within = Polynomial(qc.matmul(kc.transpose(-1, -2)), a).tril_().matmul(vc); // [B, H, c, Dv + 1]
            if (state is not null) within.add_(features.Build(qx.narrow(2, i0, c)).matmul(features.Weigh(state)));
            rows.Add(within.MoveToOuterDisposeScope());

            var update = features.Build(kx.narrow(2, offset + i0, c)).transpose(-1, -2).matmul(vc); // [B, H, F, Dv + 1]
            if (state is null) state = update.MoveToOuterDisposeScope();
            else state.add_(update);
        }
        var numeratorAndDenominator = cat(rows, 2);
        long dv = v.shape[3];
        var g = numeratorAndDenominator.select(-1, dv);
        var o = numeratorAndDenominator.narrow(-1, 0, dv) / g.unsqueeze(-1);
        return (o.MoveToOuterDisposeScope(), g.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Gradients for dL/do with a prefix key state for dq (keys before the chunk) and a suffix query state for
    /// dk, dv (queries after the chunk), as in <see cref="FastmaxFactorized.Backward"/>, plus the dense masked
    /// block inside each chunk.
    /// </summary>
    public static (Tensor Dq, Tensor Dk, Tensor Dv) Backward(
        Tensor q, Tensor k, Tensor v, Tensor o, Tensor g, Tensor gradOutput, double[] a, int chunk)
    {
        if (a.Length > 3) return FastmaxChunkedGathered.Backward(q, k, v, o, g, gradOutput, a, chunk);
        var features = new PackedTaylorFeatures((int)q.shape[3], a);
        if (SplitHeads(features, q, chunk))
        {
            var perHead = PerHead(new[] { q, k, v, o, g, gradOutput }, t =>
            {
                var (dq1, dk1, dv1) = Backward(t[0], t[1], t[2], t[3], t[4], t[5], a, chunk);
                return new[] { dq1, dk1, dv1 };
            });
            return (perHead[0], perHead[1], perHead[2]);
        }
        using var scope = NewDisposeScope();
        var b = Derivative(a);
        long nq = q.shape[2], offset = k.shape[2] - nq, dv = v.shape[3];
        var (gHat, gPrime) = ScaledOutputGradients(o, g, gradOutput);
        var (qx, kx, vOne) = (features.Extend(q), features.Extend(k), AppendOnes(v));
        var starts = Enumerable.Range(0, (int)((nq + chunk - 1) / chunk)).Select(c => (long)c * chunk).ToArray();
        long Size(long i0) => Math.Min(chunk, nq - i0);
        int rows = TokensPerChunk(features, k, chunk);

        var dq = new Tensor[starts.Length];
        var dkWindow = new Tensor[starts.Length];
        var dvWindow = new Tensor[starts.Length];

        // Inside each chunk: the dense masked block.
        for (int c = 0; c < starts.Length; c++)
        {
            using var step = NewDisposeScope();
            long i0 = starts[c], n = Size(i0);
            var qc = q.narrow(2, i0, n);
            var kc = k.narrow(2, offset + i0, n);
            var s = qc.matmul(kc.transpose(-1, -2));                                       // [B, H, c, c]
            var f = Polynomial(s, a).tril_();
            var ds = Polynomial(s, b).tril_().mul_(gPrime.narrow(2, i0, n).matmul(vOne.narrow(2, offset + i0, n).transpose(-1, -2)));
            dq[c] = ds.matmul(kc).MoveToOuterDisposeScope();
            dkWindow[c] = ds.transpose(-1, -2).matmul(qc).MoveToOuterDisposeScope();
            dvWindow[c] = f.transpose(-1, -2).matmul(gHat.narrow(2, i0, n)).MoveToOuterDisposeScope();
        }

        // dq: keys before the chunk, carried forward in the key state S.
        var keyState = offset > 0 ? KeyValueState(features, kx.narrow(2, 0, offset), vOne.narrow(2, 0, offset), rows) : null;
        for (int c = 0; c < starts.Length; c++)
        {
            using var step = NewDisposeScope();
            long i0 = starts[c], n = Size(i0);
            if (keyState is not null)
                dq[c].add_(features.Gradient(features.Tilde(qx.narrow(2, i0, n)), gPrime.narrow(2, i0, n), features.GradientMatrix(features.Weigh(keyState))));
            var update = features.Build(kx.narrow(2, offset + i0, n)).transpose(-1, -2).matmul(vOne.narrow(2, offset + i0, n));
            if (keyState is null) keyState = update.MoveToOuterDisposeScope();
            else keyState.add_(update);
        }

        // dk, dv: queries after the chunk, carried backward in the query state R = Σ_i φ(q̃_i)ᵀ Ĝ′_i.
        Tensor? queryState = null;
        for (int c = starts.Length - 1; c >= 0; c--)
        {
            using var step = NewDisposeScope();
            long i0 = starts[c], n = Size(i0);
            var kc = kx.narrow(2, offset + i0, n);
            if (queryState is not null)
            {
                var weighted = features.Weigh(queryState);
                dkWindow[c].add_(features.Gradient(features.Tilde(kc), vOne.narrow(2, offset + i0, n), features.GradientMatrix(weighted)));
                dvWindow[c].add_(features.Build(kc).matmul(weighted.narrow(-1, 0, dv)));
            }
            var update = features.Build(qx.narrow(2, i0, n)).transpose(-1, -2).matmul(gPrime.narrow(2, i0, n));
            if (queryState is null) queryState = update.MoveToOuterDisposeScope();
            else queryState.add_(update);
        }

        // Keys before the first query's window are seen by every query.
        var dkParts = new List<Tensor>();
        var dvParts = new List<Tensor>();
        if (offset > 0)
        {
            var weighted = features.Weigh(queryState!);
            var gradientMatrix = features.GradientMatrix(weighted);
            foreach (var (kc, vc) in Chunks(kx, rows, 0, offset).Zip(Chunks(vOne, rows, 0, offset)))
            {
                dkParts.Add(features.Gradient(features.Tilde(kc), vc, gradientMatrix));
                dvParts.Add(features.Build(kc).matmul(weighted.narrow(-1, 0, dv)));
            }
        }
        dkParts.AddRange(dkWindow);
        dvParts.AddRange(dvWindow);
        return (cat(dq, 2).MoveToOuterDisposeScope(), cat(dkParts, 2).MoveToOuterDisposeScope(), cat(dvParts, 2).MoveToOuterDisposeScope());
    }
}
