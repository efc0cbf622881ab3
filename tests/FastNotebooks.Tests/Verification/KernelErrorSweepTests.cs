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

    [Fact]
    public void Identically_zero_gradients_are_reported_as_not_applicable()
    {
        var error = KernelErrorSweep.Measure(1, 4, 1.0, new FastmaxOptions(), ScalarType.Float64, seed: 3);
        Assert.True(double.IsNaN(error.GradQ));
        Assert.InRange(error.GradV, 0, 1e-12);
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
