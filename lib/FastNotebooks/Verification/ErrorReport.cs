using static TorchSharp.torch;

namespace FastNotebooks.Verification;

/// <summary>
/// How far one tensor is from another: the single comparison used by tests and notebooks.
/// RelativeError = max|actual − expected| / max|expected| (scale-free, defined when expected is not all zero);
/// RelativeRms = ‖actual − expected‖₂ / ‖expected‖₂.
/// </summary>
public sealed record ErrorReport(string Name, double MaxAbs, double RelativeError, double RelativeRms, bool HasNaN, string Shape)
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
        return new ErrorReport(name, maxAbs, maxAbs / Math.Max(scale, ScaleFloor), rms / Math.Max(norm, ScaleFloor), nan, AttentionShape(actual));
    }

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

    public override string ToString() =>
        $"{Name} {Shape}: max-abs {MaxAbs:G3}, relative {RelativeError:G3}, relative-RMS {RelativeRms:G3}{(HasNaN ? ", NaN present" : "")}";

    static string AttentionShape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
}

/// <summary>Raised by <see cref="ErrorReport.Require"/>.</summary>
public sealed class ErrorToleranceException(string message) : Exception(message);
