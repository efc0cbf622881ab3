using System.Runtime.Intrinsics;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>A fact about the AVX-512 kernels: reported as skipped, with the reason, on a processor without AVX-512.</summary>
public sealed class Avx512FactAttribute : FactAttribute
{
    public Avx512FactAttribute()
    {
        if (!Vector512.IsHardwareAccelerated) Skip = Avx512.Missing;
    }
}

/// <summary>A theory about the AVX-512 kernels: reported as skipped, with the reason, on a processor without AVX-512.</summary>
public sealed class Avx512TheoryAttribute : TheoryAttribute
{
    public Avx512TheoryAttribute()
    {
        if (!Vector512.IsHardwareAccelerated) Skip = Avx512.Missing;
    }
}

static class Avx512
{
    public const string Missing = "no AVX-512 on this processor: the CPU backend runs the tensor-op forms here, which other tests cover";
}
