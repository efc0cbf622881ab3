using static TorchSharp.torch;

namespace FastNotebooks.Bounds;

/// <summary>
/// Query position i under the causal mask: the largest |∂a_ij/∂s_ij| and |∂a_ij/∂s_il| (l ≠ j) over the keys j, l ≤ i,
/// and the same scaled by the keys the query sees, (i + 1)·diagonal (bound 4) and (i + 1)²·off-diagonal (bound 20).
/// </summary>
public sealed record CausalBoundPoint(int Position, double Diagonal, double OffDiagonal)
{
    public double DiagonalScaled => (Position + 1) * Diagonal;
    public double OffDiagonalScaled => (double)(Position + 1) * (Position + 1) * OffDiagonal;
}

/// <summary>
/// The gradient bound per position under the causal mask. Query i sees i + 1 keys, so g_i ≥ (i + 1)/2 and the bound
/// reads 4/(i + 1) and 20/(i + 1)² rather than 4/N and 20/N²: early queries get no 1/N decay. Measured by float64
/// autograd on row i of s restricted to keys 0..i (q, k normalized over the whole sequence; any normalization that
/// keeps |s| ≤ 1 satisfies the premise).
/// </summary>
public static class CausalBound
{
    public static IReadOnlyList<CausalBoundPoint> Measure(BoundMechanism mechanism, int n, int d = 16, double scale = 1, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(mechanism);
        if (n < 1 || d < 1) throw new ArgumentException($"need n ≥ 1 and d ≥ 1; got n {n}, d {d}.", nameof(n));
        var (q, k, _) = BoundInputs.Draw(BoundInputKind.Gaussian, n, d, 1, scale, 0, seed);
        using var sAll = mechanism.Similarities(q, k);
        var points = new List<CausalBoundPoint>();
        for (int i = 0; i < n; i++)
        {
            using var scope = NewDisposeScope();
            var row = sAll[i, ..(i + 1)].unsqueeze(0).detach().requires_grad_();            // [1, i + 1]
            var a = mechanism.Scores(row);
            double diagonal = 0, off = 0;
            for (int j = 0; j <= i; j++)
            {
                var g = autograd.grad(new[] { a[0, j] }, new[] { row }, retain_graph: true)[0][0].abs(); // ∂a_ij/∂s_il, l = 0..i
                diagonal = Math.Max(diagonal, g[j].item<double>());
                if (i > 0) off = Math.Max(off, g.index_fill(0, tensor(new long[] { j }), 0.0).max().item<double>());
            }
            points.Add(new CausalBoundPoint(i, diagonal, off));
        }
        return points;
    }
}
