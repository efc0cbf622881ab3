using static TorchSharp.torch;

namespace FastNotebooks;

/// <summary>
/// A tensor's sizes without what TorchSharp's <c>shape</c> leaves behind: each <c>shape</c> hands the native side a fresh
/// callback and leaves a small C-heap block that only a .NET collection frees, and the kernels ask for shapes hundreds of times a
/// call. Among the tensor blocks such leftovers keep freed blocks from merging, so the heap grows and new tensors touch fresh
/// pages (measurements: PERF.md, "the model step"). <see cref="Tensor.size(int)"/> asks for one size and leaves nothing; so does
/// <see cref="Tensor.stride(int)"/>. Where one size is wanted, ask <c>size(d)</c> itself.
/// </summary>
public static class TensorShape
{
    /// <summary>The sizes of <paramref name="x"/>, one per dimension, as <c>shape</c> gives them.</summary>
    public static long[] Shape(this Tensor x)
    {
        var sizes = new long[x.dim()];
        for (int d = 0; d < sizes.Length; d++) sizes[d] = x.size(d);
        return sizes;
    }

    /// <summary>The strides of <paramref name="x"/> in elements, one per dimension, as <c>stride()</c> gives them (and as free of leftovers as <see cref="Shape"/>).</summary>
    public static long[] Strides(this Tensor x)
    {
        var strides = new long[x.dim()];
        for (int d = 0; d < strides.Length; d++) strides[d] = x.stride(d);
        return strides;
    }
}
