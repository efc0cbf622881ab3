using static TorchSharp.torch;
using static FastNotebooks.Attention.Fastmax.TensorOps.FastmaxFactorized;
using static FastNotebooks.Attention.Fastmax.Reference.FactorizedReference;
using static FastNotebooks.Attention.Fastmax.Reference.TaylorFeatures;

namespace FastNotebooks.Attention.Fastmax.Reference;

/// <summary>
/// The general-order causal path (any p, used for p = 3 and as a second oracle in tests), with gathered features
/// (<see cref="TaylorFeatures"/>). Causal Fastmax in chunks (README.md, "Causal"): query i sees keys j ≤ off + i, off = Nk − Nq. Query chunk
/// [i0, i1) meets the keys before off + i0 through a running state S = Σ φ_k(k_j)ᵀ[v_j, 1] and the keys of its
/// own window [off + i0, off + i1) through a dense chunk×chunk block with a lower-triangular mask. The
/// N·D^(p+1) prefix sums are never materialized: memory is O(chunk·F + F·Dv) per head.
/// </summary>
public static class ChunkedReference
{
    /// <summary>o [B, H, Nq, Dv] and the denominator g [B, H, Nq].</summary>
    public static (Tensor Output, Tensor Denominator) Forward(Tensor q, Tensor k, Tensor v, double[] a, int chunk)
    {
        using var scope = NewDisposeScope();
        int order = a.Length - 1;
        long nq = q.size(2), offset = k.size(2) - nq;
        var vOne = AppendOnes(v);
        var state = offset > 0 ? KeyValueState(k.narrow(2, 0, offset), v.narrow(2, 0, offset), order, chunk) : null;

        var rows = new List<Tensor>();
        for (long i0 = 0; i0 < nq; i0 += chunk)
        {
            using var step = NewDisposeScope();
            long c = Math.Min(chunk, nq - i0);
            var qc = q.narrow(2, i0, c);
            var kc = k.narrow(2, offset + i0, c);
            var vc = vOne.narrow(2, offset + i0, c);
            var within = Polynomial(qc.matmul(kc.transpose(-1, -2)), a).tril_().matmul(vc); // [B, H, c, Dv + 1]
            if (state is not null) within = within + Query(qc, a).matmul(state);
            rows.Add(within.MoveToOuterDisposeScope());

            var update = Key(kc, order).transpose(-1, -2).matmul(vc);                  // [B, H, F, Dv + 1]
            if (state is null) state = update.MoveToOuterDisposeScope();
            else state.add_(update);
        }
        var (o, g) = OutputAndDenominator(cat(rows, 2), v.size(3));
        return (o.MoveToOuterDisposeScope(), g.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Gradients for dL/do with prefix states for dq (keys before the chunk) and suffix states for dk, dv
    /// (queries after the chunk), plus the dense masked block inside each chunk.
    /// </summary>
    public static (Tensor Dq, Tensor Dk, Tensor Dv) Backward(
        Tensor q, Tensor k, Tensor v, Tensor o, Tensor g, Tensor gradOutput, double[] a, int chunk)
    {
        using var scope = NewDisposeScope();
        int order = a.Length - 1;
        var b = Derivative(a);
        long nq = q.size(2), offset = k.size(2) - nq;
        var (gHat, gPrime) = ScaledOutputGradientsByTensorOps(o, g, gradOutput);
        var vOne = AppendOnes(v);
        var starts = Enumerable.Range(0, (int)((nq + chunk - 1) / chunk)).Select(c => (long)c * chunk).ToArray();
        long Size(long i0) => Math.Min(chunk, nq - i0);

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
            var ds = Polynomial(s, b).tril_() * gPrime.narrow(2, i0, n).matmul(vOne.narrow(2, offset + i0, n).transpose(-1, -2));
            dq[c] = ds.matmul(kc).MoveToOuterDisposeScope();
            dkWindow[c] = ds.transpose(-1, -2).matmul(qc).MoveToOuterDisposeScope();
            dvWindow[c] = f.transpose(-1, -2).matmul(gHat.narrow(2, i0, n)).MoveToOuterDisposeScope();
        }

        // dq: keys before the chunk, carried forward in M = Σ_j (φ′_k ⊗ v′)_jᵀ k_j.
        Tensor? m = null;
        foreach (var (kc, vc) in Chunks(k, chunk, 0, offset).Zip(Chunks(vOne, chunk, 0, offset)))
            Accumulate(ref m, RowOuter(Key(kc, order - 1), vc).transpose(-1, -2).matmul(kc));
        for (int c = 0; c < starts.Length; c++)
        {
            using var step = NewDisposeScope();
            long i0 = starts[c], n = Size(i0);
            if (m is not null)
                dq[c].add_(RowOuter(Query(q.narrow(2, i0, n), b), gPrime.narrow(2, i0, n)).matmul(m));
            var kc = k.narrow(2, offset + i0, n);
            var update = RowOuter(Key(kc, order - 1), vOne.narrow(2, offset + i0, n)).transpose(-1, -2).matmul(kc);
            if (m is null) m = update.MoveToOuterDisposeScope();
            else m.add_(update);
        }

        // dk, dv: queries after the chunk, carried backward in Nq = Σ_i (φ′_q ⊗ Ĝ′)_iᵀ q_i and P = Σ_i φ_q(q_i)ᵀ Ĝ_i.
        Tensor? nqState = null, p = null;
        for (int c = starts.Length - 1; c >= 0; c--)
        {
            using var step = NewDisposeScope();
            long i0 = starts[c], n = Size(i0);
            var kc = k.narrow(2, offset + i0, n);
            if (nqState is not null)
            {
                dkWindow[c].add_(RowOuter(Key(kc, order - 1), vOne.narrow(2, offset + i0, n)).matmul(nqState));
                dvWindow[c].add_(Key(kc, order).matmul(p!));
            }
            var qc = q.narrow(2, i0, n);
            var nqUpdate = RowOuter(Query(qc, b), gPrime.narrow(2, i0, n)).transpose(-1, -2).matmul(qc);
            var pUpdate = Query(qc, a).transpose(-1, -2).matmul(gHat.narrow(2, i0, n));
            if (nqState is null) { nqState = nqUpdate.MoveToOuterDisposeScope(); p = pUpdate.MoveToOuterDisposeScope(); }
            else { nqState.add_(nqUpdate); p!.add_(pUpdate); }
        }

        // Keys before the first query's window are seen by every query.
        var dkParts = new List<Tensor>();
        var dvParts = new List<Tensor>();
        foreach (var (kc, vc) in Chunks(k, chunk, 0, offset).Zip(Chunks(vOne, chunk, 0, offset)))
        {
            dkParts.Add(RowOuter(Key(kc, order - 1), vc).matmul(nqState!));
            dvParts.Add(Key(kc, order).matmul(p!));
        }
        dkParts.AddRange(dkWindow);
        dvParts.AddRange(dvWindow);
        return (cat(dq, 2).MoveToOuterDisposeScope(), cat(dkParts, 2).MoveToOuterDisposeScope(), cat(dvParts, 2).MoveToOuterDisposeScope());
    }
}
