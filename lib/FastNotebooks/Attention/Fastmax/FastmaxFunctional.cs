using FastNotebooks.Attention.Fastmax.Reference;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax;

/// <summary>
/// Fastmax attention (FAST, arXiv 2402.07901), functional form. The derivation is in README.md beside this file.
/// </summary>
public static class FastmaxFunctional
{
    /// <summary>
    /// o [B, H, Nq, Dv] for q [B, H, Nq, D], k [B, H, Nk, D], v [B, H, Nk, Dv]. Normalization (default
    /// mean-centered), temperature (default 1) and, in training mode, the chosen dropout are applied here;
    /// the kernel is <see cref="FastmaxFunction"/> (factorized, chunked when causal, custom backward; where no gradient is wanted its
    /// forward alone, <see cref="FastmaxDispatch.Forward"/>) or, as
    /// <see cref="FastmaxOptions.Algorithm"/> says, the N×N form <see cref="FastmaxQuadratic"/>; <see cref="FastmaxOptions.Backend"/>
    /// picks what computes it (<see cref="FastmaxDispatch"/>). Where <see cref="FastmaxDispatch.FoldsNormalization"/> holds
    /// (max-norm, unmasked, order 2, the float32 AVX-512 kernels), normalization and kernel are one node instead,
    /// <see cref="FoldedNormalization"/>, which never writes the normalized q and k.
    /// </summary>
    /// <param name="q">Queries [B, H, Nq, D].</param>
    /// <param name="k">Keys [B, H, Nk, D].</param>
    /// <param name="v">Values [B, H, Nk, Dv].</param>
    /// <param name="options">Order, coefficients, normalization, causal mask, dropout, backend; null means the defaults.</param>
    /// <param name="training">Dropout and output noise act only when true.</param>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, FastmaxOptions? options = null, bool training = false)
    {
        options ??= new FastmaxOptions();
        var a = options.ResolvedCoefficients();
        AttentionInputs.Validate(q, k, v, options.Causal);
        var backend = FastmaxDispatch.Resolve(options.Backend, q.device_type);
        var plan = FastmaxDispatch.Plan(backend, options.FeatureChunkElements, options.KeepCausalStates);

        bool regularize = training && options.DropoutRate > 0;
        int chunk = options.ResolvedChunkSize((int)q.size(3));
        var algorithm = FastmaxDispatch.Algorithm(options.Algorithm, options.Order, options.Causal, q.size(0) * q.size(1), q.size(2), k.size(2), q.size(3));
        if (FastmaxDispatch.FoldsNormalization(options, a, plan, algorithm, regularize, q, k, v)
            && FoldedNormalization.Attention(q, k, v, options, a, chunk, plan) is { } folded)
            return folded;

        using var scope = NewDisposeScope();
        bool graph = is_grad_enabled() && (q.requires_grad || k.requires_grad || v.requires_grad);
        if (graph && FastmaxDispatch.JoinsNormalization(options, algorithm, regularize))
        {
            var joined = NormalizedFastmaxFunction.Apply(q, k, v, a, options.Causal, chunk, backend, plan,
                options.Normalization == FastmaxNormalization.MeanCentered, options.Temperature);
            return WithOutputNoise(joined, options, regularize).MoveToOuterDisposeScope();
        }
        var qHat = FastmaxNormalizer.Normalize(q, options.Normalization, options.Causal, plan);
        if (options.Temperature != 1.0) qHat = qHat / options.Temperature;
        var kHat = FastmaxNormalizer.Normalize(k, options.Normalization, options.Causal, plan);

        if (regularize && options.Dropout == FastmaxDropout.LinearTerm)
        {
            qHat = nn.functional.dropout(qHat, options.DropoutRate, training: true);
            kHat = nn.functional.dropout(kHat, options.DropoutRate, training: true);
        }
        // Where no gradient is wanted the kernel runs without its autograd node (the node's native leftovers and bookkeeping are
        // most of what a short call costs beyond the kernel).
        var o = regularize && options.Dropout == FastmaxDropout.QuadraticTerm
            ? FastmaxDropoutKernel.QuadraticTerm(qHat, kHat, v, a, options.Causal, options.DropoutRate, chunk, plan)
            : algorithm == FastmaxAlgorithm.Quadratic
                ? FastmaxQuadratic.Attention(qHat, kHat, v, a, options.Causal)
                : graph
                    ? FastmaxFunction.Apply(qHat.contiguous(), kHat.contiguous(), v.contiguous(), a, options.Causal, chunk, backend, plan)
                    : FastmaxDispatch.Forward(backend, plan, qHat.contiguous(), kHat.contiguous(), v.contiguous(), a, options.Causal, chunk).Output;
        return WithOutputNoise(o, options, regularize).MoveToOuterDisposeScope();
    }

    /// <summary>o·(1 + rate·ε), ε ~ N(0, 1), where the output-noise dropout acts; o otherwise.</summary>
    static Tensor WithOutputNoise(Tensor o, FastmaxOptions options, bool regularize) =>
        regularize && options.Dropout == FastmaxDropout.OutputNoise ? o * (1 + options.DropoutRate * randn_like(o)) : o;
}
