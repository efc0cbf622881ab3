using static TorchSharp.torch;

namespace FastNotebooks.Bounds;

/// <summary>
/// ∂a/∂s by autograd, column by column. Row i of a depends only on row i of s, so one backward pass with
/// grad_output = e_j in every row (zeros, ones in column j) gives grad_s[i, l] = ∂a_ij/∂s_il for all i, l at once;
/// N passes give the whole [N, N, N] Jacobian. Cost O(N³), memory O(N²) for <see cref="Maxima"/>.
/// </summary>
public static class ScoreJacobian
{
    /// <summary>The full Jacobian J[i, j, l] = ∂a_ij/∂s_il [N, N, N]; for small N (tests, cross-checks).</summary>
    /// <param name="s">Similarities [N, N], float64.</param>
    /// <param name="scores">The map from s to the attention rows a [N, N].</param>
    public static Tensor Full(Tensor s, Func<Tensor, Tensor> scores)
    {
        long n = s.shape[1];
        var columns = new List<Tensor>();
        using var scope = NewDisposeScope();
        var leaf = s.detach().clone().requires_grad_(true);
        var a = scores(leaf);
        for (long j = 0; j < n; j++)
            columns.Add(ColumnPass(a, leaf, j)); // [N, N]: ∂a_ij/∂s_il over i, l
        return stack(columns, 1).MoveToOuterDisposeScope(); // [N(i), N(j), N(l)]
    }

    /// <summary>
    /// max_{i,j}|∂a_ij/∂s_ij| and max_{i, l≠j}|∂a_ij/∂s_il|, keeping only running maxima (memory O(N²)).
    /// </summary>
    /// <param name="s">Similarities [N, N], float64.</param>
    /// <param name="scores">The map from s to the attention rows a [N, N].</param>
    public static (double Diagonal, double OffDiagonal) Maxima(Tensor s, Func<Tensor, Tensor> scores)
    {
        long n = s.shape[1];
        double diagonal = 0, offDiagonal = 0;
        using var scope = NewDisposeScope();
        var leaf = s.detach().clone().requires_grad_(true);
        var a = scores(leaf);
        for (long j = 0; j < n; j++)
        {
            using var step = NewDisposeScope();
            var grad = ColumnPass(a, leaf, j).abs(); // [N, N]
            diagonal = Math.Max(diagonal, grad.select(1, j).max().item<double>());
            if (n > 1)
                offDiagonal = Math.Max(offDiagonal, grad.index_fill(1, tensor(new[] { j }), 0).max().item<double>());
        }
        return (diagonal, offDiagonal);
    }

    static Tensor ColumnPass(Tensor a, Tensor s, long j)
    {
        using var seed = zeros_like(a);
        seed.select(1, j).fill_(1);
        return autograd.grad(new[] { a }, new[] { s }, new[] { seed }, retain_graph: true)[0];
    }
}
