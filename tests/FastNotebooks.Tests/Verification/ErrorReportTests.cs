using FastNotebooks.Verification;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Verification;

public class ErrorReportTests
{
    /// <summary>
    /// A 1 % error in an entry a thousand times smaller than the largest: the scale-relative error sees 1e-5, the element-wise
    /// error sees the 1 % it is.
    /// </summary>
    [Fact]
    public void Element_wise_error_sees_an_error_in_a_small_entry()
    {
        using var expected = tensor(new[] { 1000.0, 1.0, -3.0 });
        using var actual = tensor(new[] { 1000.0, 1.01, -3.0 });
        var report = ErrorReport.Of("small entry", actual, expected);
        Assert.InRange(report.RelativeError, 0.99e-5, 1.01e-5);
        Assert.InRange(report.ElementRelativeError, 0.0099, 0.0101);
        report.Require(1e-4);
        Assert.Throws<ErrorToleranceException>(() => report.RequireElementwise(1e-3));
    }

    /// <summary>An entry that is zero in exact arithmetic is measured against the dtype's floor, √ε·max|expected|, not against 0.</summary>
    [Theory]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Float32)]
    public void Element_wise_error_of_a_zero_entry_is_taken_against_the_dtype_floor(ScalarType dtype)
    {
        double floor = ErrorReport.ElementFloor(dtype);
        using var expected = tensor(new[] { 2.0, 0.0 }, dtype: ScalarType.Float64);
        using var actual = tensor(new[] { 2.0, 0.5 * floor * 2.0 }, dtype: ScalarType.Float64).to(dtype);
        var report = ErrorReport.Of("zero entry", actual, expected);
        Assert.InRange(report.ElementRelativeError, 0.45, 0.55);   // |0.5·floor·2| / (0 + floor·2)
    }

    [Fact]
    public void Element_wise_check_fails_on_NaN()
    {
        using var expected = tensor(new[] { 1.0, 2.0 });
        using var actual = tensor(new[] { 1.0, double.NaN });
        Assert.Throws<ErrorToleranceException>(() => ErrorReport.Of("nan", actual, expected).RequireElementwise(1));
    }

    [Fact]
    public void Floor_rejects_integer_dtypes_by_name()
    {
        var error = Assert.Throws<ArgumentException>(() => ErrorReport.ElementFloor(ScalarType.Int32));
        Assert.Equal("dtype", error.ParamName);
    }
}
