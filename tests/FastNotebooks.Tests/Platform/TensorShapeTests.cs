using static TorchSharp.torch;

namespace FastNotebooks.Tests.Platform;

/// <summary><see cref="TensorShape"/>: the sizes and strides TorchSharp gives, without the C-heap leftovers of its <c>shape</c>.</summary>
[Collection("C heap")]
public class TensorShapeTests
{
    public static TheoryData<string> Layouts => new() { "scalar", "vector", "contiguous", "transposed", "narrowed", "expanded", "permuted" };

    static Tensor Make(string layout) => layout switch
    {
        "scalar" => tensor(3.0f),
        "vector" => arange(7),
        "contiguous" => zeros(2, 3, 5, 4),
        "transposed" => zeros(2, 3, 5, 4).transpose(-1, -2),
        "narrowed" => zeros(2, 9, 6).narrow(1, 2, 4),
        "expanded" => zeros(1, 5).expand(6, 5),
        "permuted" => zeros(new long[] { 1, 8, 3, 4, 2 }).permute(2, 0, 3, 1, 4),
        _ => throw new ArgumentException(layout),
    };

    [Theory, MemberData(nameof(Layouts))]
    public void Sizes_and_strides_are_torchsharps(string layout)
    {
        using var x = Make(layout);
        Assert.Equal(x.shape, x.Shape());
        Assert.Equal(x.stride(), x.Strides());
    }

    /// <summary>
    /// 5,000 of TorchSharp's <c>shape</c> calls hold C-heap blocks until a collection; 5,000 <see cref="TensorShape.Shape"/> calls
    /// hold none (mallinfo2, all arenas; the collection runs alone). The first half shows that the measure sees the leftovers.
    /// </summary>
    [SkippableFact]
    public void Shape_leaves_nothing_on_the_c_heap_where_torchsharps_shape_does()
    {
        Skip.IfNot(CHeap.Glibc, "the C library is not glibc: mallinfo2 cannot report the heap in use.");
        using var x = zeros(2, 3, 5, 4);
        NativeHeap.ReleaseUnownedNativeObjects();
        long before = CHeap.InUse();
        long sum = Calls(() => x.shape[2]);
        long byTorchSharp = CHeap.InUse() - before;
        NativeHeap.ReleaseUnownedNativeObjects();
        before = CHeap.InUse();
        sum += Calls(() => x.Shape()[2]);
        long byShape = CHeap.InUse() - before;
        Assert.Equal(2 * 5_000 * 5, sum);
        Assert.True(byTorchSharp >= 5_000 * 32, $"5,000 shape calls held only {byTorchSharp} bytes: the measure does not see their leftovers");
        Assert.True(byShape < byTorchSharp / 10, $"5,000 Shape() calls held {byShape} bytes of the C heap (shape: {byTorchSharp})");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static long Calls(Func<long> size)
    {
        long sum = 0;
        for (int i = 0; i < 5_000; i++) sum += size();
        return sum;
    }
}
