using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fma;

/// <summary>
/// Fast Multipole Attention as a module: coarse keys and values per level (<see cref="FmaDownsampler"/>: learned as in
/// the paper, or average-pooled in the ablation)
/// and the blocked O(n log n) attention (<see cref="FmaBlocked"/>). Self-attention only: q, k, v have one length n,
/// n = BlockSize·2^k ≤ MaxLength.
/// </summary>
public sealed class FmaAttention : AttentionMechanism
{
    readonly FmaDownsampler keys;
    readonly FmaDownsampler values;

    public FmaAttention(FmaOptions options) : base(nameof(FmaAttention), options.Causal)
    {
        options.Validate();
        Options = options;
        keys = new FmaDownsampler("keys", options);
        values = new FmaDownsampler("values", options);
        RegisterComponents();
    }

    public FmaOptions Options { get; }

    public override Tensor forward(Tensor q, Tensor k, Tensor v) => Run(q, k, v, dense: false);

    /// <summary>The same attention through <see cref="FmaDense"/> (the oracle), with the same coarse tokens.</summary>
    public Tensor ForwardDense(Tensor q, Tensor k, Tensor v) => Run(q, k, v, dense: true);

    Tensor Run(Tensor q, Tensor k, Tensor v, bool dense)
    {
        var layout = Check(q, k, v);
        using var scope = NewDisposeScope();
        var coarseK = Enumerable.Range(0, layout.Levels).Select(l => keys.forward(k, l)).ToList();
        var coarseV = Enumerable.Range(0, layout.Levels).Select(l => values.forward(v, l)).ToList();
        var o = dense
            ? FmaDense.Forward(q, k, v, coarseK, coarseV, layout, Options.ScaleByGroupSize)
            : FmaBlocked.Forward(q, k, v, coarseK, coarseV, layout, Options.ScaleByGroupSize, Options.Dropout, training);
        return o.MoveToOuterDisposeScope();
    }

    FmaLayout Check(Tensor q, Tensor k, Tensor v)
    {
        AttentionInputs.Validate(q, k, v, Causal);
        if (k.size(2) != q.size(2))
            throw new ArgumentException($"FMA is self-attention: q and k need one length; got q {AttentionInputs.Shape(q)}, k {AttentionInputs.Shape(k)}.", nameof(k));
        if (q.size(3) != Options.HeadDim || v.size(3) != Options.HeadDim)
            throw new ArgumentException($"FMA was built for HeadDim {Options.HeadDim}; got q {AttentionInputs.Shape(q)}, v {AttentionInputs.Shape(v)}.", nameof(q));
        int n = (int)q.size(2);
        FmaLayout.RequireLength(n, Options.BlockSize, nameof(q));
        if (n > Options.MaxLength)
            throw new ArgumentException($"sequence length {n} exceeds MaxLength {Options.MaxLength} the module was built for.", nameof(q));
        return new FmaLayout(n, Options.BlockSize, Causal);
    }
}
