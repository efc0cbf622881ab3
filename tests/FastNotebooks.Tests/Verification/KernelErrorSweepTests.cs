using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Verification;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Verification;

public class KernelErrorSweepTests
{
    [Fact]
    public void A_sweep_point_reports_float64_errors_near_roundoff()
    {
        var error = KernelErrorSweep.Measure(33, 5, 1.0, new FastmaxOptions { Causal = true, ChunkSize = 8 }, ScalarType.Float64, seed: 3);
        foreach (var value in new[] { error.Output, error.GradQ, error.GradK, error.GradV })
            Assert.InRange(value, 0, 1e-12);
    }

    [Theory]
    [InlineData("Float64", 1e-12)]
    [InlineData("Float32", 1e-5)]
    public void Identically_zero_gradients_are_flagged_and_measured_by_the_kernels_own_size(string dtype, double tolerance)
    {
        // N = 1: the output is v whatever q and k are, so ∂L/∂q = ∂L/∂k = 0 exactly.
        var error = KernelErrorSweep.Measure(1, 4, 1.0, new FastmaxOptions(), Enum.Parse<ScalarType>(dtype), seed: 3);
        Assert.Equal(KernelQuantity.GradQ | KernelQuantity.GradK, error.ExactlyZero);
        Assert.All(error.All, e => Assert.False(double.IsNaN(e), $"NaN in {error}"));
        Assert.InRange(error.GradQ, 0, tolerance);
        Assert.InRange(error.GradV, 0, tolerance);
        Assert.Equal(KernelQuantity.None, KernelErrorSweep.Measure(9, 4, 1.0, new FastmaxOptions(), ScalarType.Float64, seed: 3).ExactlyZero);
    }

    [Fact]
    public void A_small_sweep_has_every_point_finite_and_within_tolerance()
    {
        var errors = KernelErrorSweep.Run(ns: new[] { 1, 9 }, ds: new[] { 1, 4 }).ToList();
        Assert.NotEmpty(errors);
        Assert.All(errors, e => Assert.True(e.Worst <= (e.Dtype == "Float64" ? 1e-10 : 1e-3), $"{e.Case}: worst {e.Worst}"));
    }

    [Fact]
    public void A_maximum_of_errors_keeps_nan_and_infinity()
    {
        Assert.True(double.IsNaN(KernelErrorSweep.MaxOf(new[] { 1e-16, double.NaN, 1e-15 })));
        Assert.True(double.IsNaN(KernelErrorSweep.MaxOf(new[] { double.NaN, 1.0 })));
        Assert.Equal(double.PositiveInfinity, KernelErrorSweep.MaxOf(new[] { 1.0, double.PositiveInfinity }));
        Assert.Equal(2.0, KernelErrorSweep.MaxOf(new[] { 1.0, 2.0 }));
        var nan = new KernelError(8, 4, 2, false, FastmaxNormalization.MeanCentered, 1, "Float32", 1e-7, double.NaN, 1e-7, 1e-7);
        Assert.True(double.IsNaN(nan.Worst));
    }

    [Fact]
    public void Error_report_sees_a_wrong_answer()
    {
        using var expected = randn(3, 4, dtype: ScalarType.Float64);
        using var wrong = expected * 1.001;
        Assert.Throws<ErrorToleranceException>(() => ErrorReport.Of("wrong", wrong, expected).Require(1e-6));
        Assert.Throws<ErrorToleranceException>(() => ErrorReport.Of("nan", expected / 0 * 0, expected).Require(1));
    }
}

public class FiniteDifferencesTests
{
    [Fact]
    public void Gradient_of_a_known_function()
    {
        using var x = tensor(new[] { 0.5, -2.0, 3.0 });
        using var y = tensor(new[] { 1.5, 4.0, -1.0 });
        // L = Σ x² y  →  ∂L/∂x = 2xy, ∂L/∂y = x²
        using var dx = FiniteDifferences.Gradient(t => (t[0] * t[0] * t[1]).sum(), new[] { x, y }, 0);
        using var dy = FiniteDifferences.Gradient(t => (t[0] * t[0] * t[1]).sum(), new[] { x, y }, 1);
        ErrorReport.Of("dL/dx", dx, 2 * x * y).Require(1e-8);
        ErrorReport.Of("dL/dy", dy, x * x).Require(1e-8);
    }
}
