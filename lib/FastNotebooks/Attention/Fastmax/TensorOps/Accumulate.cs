using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax.TensorOps;

/// <summary>
/// In-place tensor sums without a new native scalar per call: TorchSharp's <c>add_(Tensor)</c> passes alpha = 1 as a fresh
/// <see cref="Scalar"/> that no dispose scope owns, which stays on the C heap until a .NET finalizer frees it (environment.md,
/// "The C heap").
/// </summary>
internal static class Accumulate
{
    static readonly Scalar One = 1.ToScalar();

    /// <summary>target += term, in place; returns target.</summary>
    public static Tensor AddInPlace(this Tensor target, Tensor term) => target.add_(term, One);
}
