using static TorchSharp.torch;

namespace FastNotebooks.Bounds;

/// <summary>
/// ∂o_i/∂q̂_i by autograd, for o = a(q̂·k̂ᵀ)·v with k̂, v fixed. o_i depends on q̂_i only, so one backward pass
/// with grad_output = ones in output column e gives row e of every per-token Jacobian at once: Dv passes in all.
/// </summary>
public static class OutputJacobian
{
    /// <summary>Per-token Jacobians J[i, e, m] = ∂o_ie/∂q̂_im [N, Dv, D].</summary>
    /// <param name="qHat">Normalized queries [N, D], float64.</param>
    /// <param name="kHat">Normalized keys [Nk, D].</param>
    /// <param name="v">Values [Nk, Dv].</param>
    /// <param name="scores">The map from s = q̂·k̂ᵀ to the attention rows a [N, Nk].</param>
    public static Tensor PerToken(Tensor qHat, Tensor kHat, Tensor v, Func<Tensor, Tensor> scores)
    {
        long dv = v.shape[1];
        var rows = new List<Tensor>();
        using var scope = NewDisposeScope();
        var leaf = qHat.detach().clone().requires_grad_(true);
        var o = scores(leaf.matmul(kHat.detach().t())).matmul(v.detach()); // [N, Dv]
        for (long e = 0; e < dv; e++)
        {
            var seed = zeros_like(o);
            seed.select(1, e).fill_(1);
            rows.Add(autograd.grad(new[] { o }, new[] { leaf }, new[] { seed }, retain_graph: true)[0]); // [N, D]
        }
        return stack(rows, 1).MoveToOuterDisposeScope(); // [N, Dv, D]
    }

    /// <summary>max_i ‖∂o_i/∂q̂_i‖₂ (spectral norm) divided by max_j ‖v_j‖: bounded by 8 under the premise.</summary>
    /// <param name="qHat">Normalized queries [N, D], float64.</param>
    /// <param name="kHat">Normalized keys [Nk, D].</param>
    /// <param name="v">Values [Nk, Dv].</param>
    /// <param name="scores">The map from s = q̂·k̂ᵀ to the attention rows a [N, Nk].</param>
    public static double Ratio(Tensor qHat, Tensor kHat, Tensor v, Func<Tensor, Tensor> scores)
    {
        using var scope = NewDisposeScope();
        var jacobians = PerToken(qHat, kHat, v, scores);
        double spectral = linalg.matrix_norm(jacobians, 2.0).max().item<double>(); // over [N]
        double largestValue = linalg.vector_norm(v, dims: new long[] { 1 }).max().item<double>();
        return spectral / largestValue;
    }
}
