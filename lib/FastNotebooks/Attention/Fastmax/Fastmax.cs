using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax;

/// <summary>
/// Fastmax attention (FAST, arXiv 2402.07901), functional form. The derivation is in README.md beside this file.
/// </summary>
public static class Fastmax
{
    /// <summary>
    /// o [B, H, Nq, Dv] for q [B, H, Nq, D], k [B, H, Nk, D], v [B, H, Nk, Dv]. Normalization (default
    /// mean-centered), temperature (default 1) and, in training mode, the chosen dropout are applied here;
    /// the kernel is <see cref="FastmaxFunction"/> (factorized, chunked when causal, custom backward) or, as
    /// <see cref="FastmaxOptions.Algorithm"/> says, the N×N form <see cref="FastmaxQuadratic"/>.
    /// </summary>
    /// <param name="q">Queries [B, H, Nq, D].</param>
    /// <param name="k">Keys [B, H, Nk, D].</param>
    /// <param name="v">Values [B, H, Nk, Dv].</param>
    /// <param name="options">Order, coefficients, normalization, causal mask, dropout; null means the defaults.</param>
    /// <param name="training">Dropout and output noise act only when true.</param>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, FastmaxOptions? options = null, bool training = false)
    {
        options ??= new FastmaxOptions();
        var a = options.ResolvedCoefficients();
        AttentionInputs.Validate(q, k, v, options.Causal);

        using var scope = NewDisposeScope();
        var qHat = FastmaxNormalizer.Normalize(q, options.Normalization, options.Causal);
        if (options.Temperature != 1.0) qHat = qHat / options.Temperature;
        var kHat = FastmaxNormalizer.Normalize(k, options.Normalization, options.Causal);

        bool regularize = training && options.DropoutRate > 0;
        if (regularize && options.Dropout == FastmaxDropout.LinearTerm)
        {
            qHat = nn.functional.dropout(qHat, options.DropoutRate, training: true);
            kHat = nn.functional.dropout(kHat, options.DropoutRate, training: true);
        }
        var algorithm = FastmaxAlgorithms.Choose(options.Algorithm, options.Order, options.Causal, q.shape[0] * q.shape[1], q.shape[2], k.shape[2], q.shape[3]);
        var o = regularize && options.Dropout == FastmaxDropout.QuadraticTerm
            ? FastmaxDropoutKernel.QuadraticTerm(qHat, kHat, v, a, options.Causal, options.DropoutRate, options.ResolvedChunkSize((int)q.shape[3]))
            : algorithm == FastmaxAlgorithm.Quadratic
                ? FastmaxQuadratic.Attention(qHat, kHat, v, a, options.Causal)
                : FastmaxFunction.Apply(qHat.contiguous(), kHat.contiguous(), v.contiguous(), a, options.Causal, options.ResolvedChunkSize((int)q.shape[3]));
        if (regularize && options.Dropout == FastmaxDropout.OutputNoise)
            o = o * (1 + options.DropoutRate * randn_like(o));
        return o.MoveToOuterDisposeScope();
    }
}
