using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Bounds;
using Xunit.Abstractions;

namespace FastNotebooks.Tests.Bounds;

/// <summary>
/// The gradient bound (N·|∂a_ij/∂s_ij| ≤ 4, N²·|∂a_ij/∂s_il| ≤ 20, ‖∂o_i/∂q̂_i‖ ≤ 8 max‖v‖ for p = 2 with |s| ≤ 1)
/// holds where it is claimed, and fails where its premise does: p = 1, softmax, squared-norm normalization.
/// </summary>
public class GradientBoundTests(ITestOutputHelper output)
{
    static readonly int[] Ns = { 8, 33, 64 };
    static readonly double[] Scales = { 1e-3, 0.06, 1, 1e3 };

    [Theory]
    [InlineData(FastmaxNormalization.MeanCentered)]
    [InlineData(FastmaxNormalization.ZeroCentered)]
    public void Normalized_p2_stays_within_every_bound(FastmaxNormalization normalization)
    {
        var rows = new GradientBoundSweep().Run(Ns, Scales, mechanisms: new[] { BoundMechanism.Fastmax(2, normalization) });
        foreach (var row in rows) output.WriteLine(row.ToString());
        Assert.Equal(Ns.Length * Scales.Length * 2, rows.Count);
        foreach (var row in rows)
        {
            Assert.True(row.MaxAbsS <= BoundConstants.MaxAbsS + 1e-12, $"premise: {row}");
            Assert.True(row.WithinBounds, $"bound exceeded: {row}");
            // The adversarial inputs must really reach s ≈ −1, or they test nothing.
            if (row.Inputs == "adversarial") Assert.True(row.MaxAbsS > 0.99, $"not adversarial: {row}");
        }
    }

    [Fact]
    public void P1_has_no_uniform_bound_near_s_minus_one()
    {
        var mechanism = BoundMechanism.Fastmax(1, FastmaxNormalization.MeanCentered);
        var noises = new[] { 1e-1, 1e-2, 1e-3 };
        var rows = noises.Select(noise => new GradientBoundSweep(adversarialNoise: noise).Measure(mechanism, 32, 1, BoundInputKind.Adversarial)).ToList();
        foreach (var (noise, row) in noises.Zip(rows)) output.WriteLine($"noise {noise}: {row}");
        for (int r = 1; r < rows.Count; r++)
            Assert.True(rows[r].DiagonalScaled > 5 * rows[r - 1].DiagonalScaled, $"no growth toward s = −1: {rows[r - 1]} → {rows[r]}");
        Assert.True(rows[^1].DiagonalScaled > 25 * BoundConstants.Diagonal, $"expected far above 4: {rows[^1]}");
    }

    [Fact]
    public void Softmax_diagonal_grows_with_N_when_attention_concentrates()
    {
        var sweep = new GradientBoundSweep();
        var rows = new[] { 32, 128 }.Select(n => sweep.Measure(BoundMechanism.Softmax, n, 1, BoundInputKind.Gaussian)).ToList();
        foreach (var row in rows) output.WriteLine(row.ToString());
        Assert.True(rows[0].DiagonalScaled > BoundConstants.Diagonal, $"N = 32 should exceed 4: {rows[0]}");
        Assert.True(rows[1].DiagonalScaled > 3 * rows[0].DiagonalScaled, $"no growth with N: {rows[0]} → {rows[1]}");
        foreach (var row in rows)
        {
            // |∂a_ij/∂s_ij| = a_ij(1 − a_ij) ≤ 1/4, reached when a_ij = 1/2: N·max is at most and here close to N/4.
            Assert.InRange(row.DiagonalScaled, 0.8 * row.N / 4.0, row.N / 4.0 + 1e-9);
        }
    }

    [Theory]
    [InlineData(8)]
    [InlineData(64)]
    public void Softmax_at_tiny_scale_is_uniform(int n)
    {
        var row = new GradientBoundSweep().Measure(BoundMechanism.Softmax, n, 1e-3, BoundInputKind.Gaussian);
        output.WriteLine(row.ToString());
        // a = 1/N: N·(1/N)(1 − 1/N) = 1 − 1/N; off-diagonal N²·(1/N)² = 1.
        Assert.Equal(1 - 1.0 / n, row.DiagonalScaled, 3);
        Assert.Equal(1, row.OffDiagonalScaled, 3);
    }

    [Fact]
    public void Squared_norm_breaks_the_premise_and_the_bound()
    {
        var mechanism = BoundMechanism.Fastmax(2, FastmaxNormalization.SquaredNorm);
        // scale 0.06, D = 16: the largest squared token norm is near the floor 0.1, so ‖q̂‖, ‖k̂‖ ≈ 3 and |s| reaches ≈ 4.
        var row = new GradientBoundSweep().Measure(mechanism, 128, 0.06, BoundInputKind.Gaussian);
        output.WriteLine(row.ToString());
        Assert.True(row.MaxAbsS > 2, $"premise should break: {row}");
        Assert.True(row.OffDiagonalScaled > BoundConstants.OffDiagonal, $"off-diagonal bound should fail: {row}");
    }
}
