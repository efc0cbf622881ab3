using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.TensorOps;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>
/// The unmasked forward's last step, o = (φ·W)[:, :Dv] / g with g = (φ·W)[:, Dv]: fused into the token-column product on the
/// CPU kernels, projected and divided after on the tensor-op forms. Both must give the bits of projecting, then dividing.
/// </summary>
public class ProjectAndDivideTests
{
    [Theory]
    [InlineData(32, 100, 33, true)]    // raw input, a partial strip
    [InlineData(32, 64, 33, false)]    // extended input
    [InlineData(7, 45, 8, false)]      // small D
    [InlineData(32, 40, 1, true)]      // Dv = 0: only the denominator
    public void The_fused_division_gives_the_bits_of_projecting_then_dividing(int d, int n, int columns, bool raw)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(43 + (ulong)n);
        var a = new FastmaxOptions { Order = 2 }.ResolvedCoefficients();
        foreach (var plan in new[] { KernelPlan.Cpu, KernelPlan.TensorOps })
        {
            var features = new PackedTaylorFeatures(d, a, plan);
            var x = randn(new long[] { 2, 1, n, d }, generator: generator) / Math.Sqrt(d);
            var input = raw ? features.KernelInput(x) : features.Extend(x);
            // A positive last column keeps g away from 0, as the weighted key state's [v, 1] column does.
            var w = randn(new long[] { 2, 1, features.Size, columns }, generator: generator);
            w.narrow(-1, columns - 1, 1).abs_().add_(1);

            var product = features.Project(input, w);
            var g = product.select(-1, columns - 1);
            var o = product.narrow(-1, 0, columns - 1) / g.unsqueeze(-1);
            var (fusedO, fusedG) = plan.ProjectAndDivide(features, input, w);
            Assert.Equal(o.shape, fusedO.shape);
            Assert.Equal(g.shape, fusedG.shape);
            Assert.True(fusedO.eq(o).all().item<bool>(), $"{plan}, D={d}, C={columns}: o differs");
            Assert.True(fusedG.eq(g).all().item<bool>(), $"{plan}, D={d}, C={columns}: g differs");
        }
    }
}
