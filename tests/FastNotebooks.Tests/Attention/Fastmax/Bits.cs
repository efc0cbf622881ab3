using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax;

/// <summary>Bit-for-bit comparison of two tensors, for kernels that must reproduce another form's exact results.</summary>
static class Bits
{
    /// <summary>The same shape and every element equal.</summary>
    public static bool Same(Tensor x, Tensor y) => x.shape.SequenceEqual(y.shape) && x.eq(y).all().item<bool>();
}
