using static TorchSharp.torch;

namespace FastNotebooks.Verification;

/// <summary>
/// How far one tensor is from another: the single comparison used by tests and notebooks.
/// RelativeError = max|actual − expected| / max|expected| (scale-free, defined when expected is not all zero);
/// RelativeRms = ‖actual − expected‖₂ / ‖expected‖₂;
/// ElementRelativeError = max_i |actual_i − expected_i| / (|expected_i| + floor), floor = √ε·max|expected| with ε the machine
/// epsilon of actual's dtype (<see cref="ElementFloor"/>). RelativeError divides by the largest entry, so an error in a small
/// entry hides under it; the element-wise error sees it, down to the floor, below which an entry has lost half its digits to
/// the rounding of the largest terms anyway.
/// </summary>
public sealed record ErrorReport(string Name, double MaxAbs, double RelativeError, double RelativeRms, bool HasNaN, string Shape,
    double ElementRelativeError = double.NaN)
{
    /// <summary>Smallest reference scale; below it errors are reported as absolute.</summary>
    public const double ScaleFloor = 1e-300;

    public static ErrorReport Of(string name, Tensor actual, Tensor expected)
    {
        if (!actual.shape.SequenceEqual(expected.shape))
            throw new ArgumentException(
                $"{name}: shapes differ: actual {AttentionShape(actual)}, expected {AttentionShape(expected)}.", nameof(actual));
        using var scope = NewDisposeScope();
        var a = actual.detach().to(ScalarType.Float64);
        var e = expected.detach().to(ScalarType.Float64);
        var diff = (a - e).abs();
        bool nan = a.isnan().any().item<bool>() || e.isnan().any().item<bool>();
        double maxAbs = diff.numel() == 0 ? 0 : diff.max().item<double>();
        double scale = e.numel() == 0 ? 0 : e.abs().max().item<double>();
        double rms = diff.square().sum().sqrt().item<double>();
        double norm = e.square().sum().sqrt().item<double>();
        double floor = Math.Max(ElementFloor(actual.dtype) * scale, ScaleFloor);
        double elementwise = diff.numel() == 0 ? 0 : (diff / (e.abs() + floor)).max().item<double>();
        return new ErrorReport(name, maxAbs, maxAbs / Math.Max(scale, ScaleFloor), rms / Math.Max(norm, ScaleFloor), nan, AttentionShape(actual), elementwise);
    }

    /// <summary>
    /// The floor of the element-wise error as a fraction of max|expected|: √ε of <paramref name="dtype"/> (float64 1.5e-8,
    /// float32 3.5e-4, float16 and bfloat16 above 0.03).
    /// </summary>
    public static double ElementFloor(ScalarType dtype) => Math.Sqrt(dtype switch
    {
        ScalarType.Float64 => Math.Pow(2, -52),
        ScalarType.Float32 => Math.Pow(2, -23),
        ScalarType.Float16 => Math.Pow(2, -10),
        ScalarType.BFloat16 => Math.Pow(2, -7),
        _ => throw new ArgumentException($"ElementFloor takes floating dtypes; got {dtype}.", nameof(dtype)),
    });

    /// <summary>
    /// Throws with a readable message unless finite and RelativeError ≤ <paramref name="tolerance"/>, or the largest
    /// difference is at most <paramref name="absoluteFloor"/> (for quantities that are zero in exact arithmetic,
    /// where only roundoff remains).
    /// </summary>
    /// <param name="tolerance">Largest allowed RelativeError.</param>
    /// <param name="absoluteFloor">Differences up to this size always pass; 0 (default) disables it.</param>
    public ErrorReport Require(double tolerance, double absoluteFloor = 0)
    {
        bool withinFloor = MaxAbs <= absoluteFloor;
        if (HasNaN || double.IsNaN(RelativeError) || (RelativeError > tolerance && !withinFloor))
            throw new ErrorToleranceException($"{this} exceeds relative tolerance {tolerance:G3}" + (absoluteFloor > 0 ? $" and absolute floor {absoluteFloor:G3}" : ""));
        return this;
    }

    /// <summary>Throws with a readable message unless finite and ElementRelativeError ≤ <paramref name="tolerance"/>.</summary>
    /// <param name="tolerance">Largest allowed element-wise error relative to |expected| + the dtype's floor.</param>
    public ErrorReport RequireElementwise(double tolerance)
    {
        if (HasNaN || !(ElementRelativeError <= tolerance))
            throw new ErrorToleranceException($"{this} exceeds element-wise tolerance {tolerance:G3}");
        return this;
    }

    public override string ToString() =>
        $"{Name} {Shape}: max-abs {MaxAbs:G3}, relative {RelativeError:G3}, relative-RMS {RelativeRms:G3}, element-wise {ElementRelativeError:G3}{(HasNaN ? ", NaN present" : "")}";

    static string AttentionShape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
}

/// <summary>Raised by <see cref="ErrorReport.Require"/>.</summary>
public sealed class ErrorToleranceException(string message) : Exception(message);
