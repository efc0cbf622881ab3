using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Verification;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>The backward's Ĝ = dO / g and Ĝ′ = [Ĝ, −Ĝ·o] in one pass over the tokens against the tensor-op form.</summary>
public class ScaledOutputGradientsTests
{
    public static TheoryData<ScalarType> Dtypes() => new() { ScalarType.Float64, ScalarType.Float32 };

    /// <summary>
    /// 30 random cases: 1 to 3 leading dims, 1 to 300 tokens, Dv = 1 to 40, g of either sign and scaled by 1e-3 to 1e3, dO
    /// transposed (not contiguous) every third case.
    /// </summary>
    [Theory]
    [MemberData(nameof(Dtypes))]
    public void One_pass_equals_the_tensor_ops(ScalarType dtype)
    {
        var random = new Random(21);
        var generator = new Generator(22);
        for (int trial = 0; trial < 30; trial++)
        {
            using var scope = NewDisposeScope();
            long[] lead = Enumerable.Range(0, random.Next(1, 4)).Select(_ => (long)random.Next(1, 4)).ToArray();
            long n = trial == 0 ? 1 : random.Next(1, 301), dv = trial == 1 ? 1 : random.Next(1, 41);
            var o = randn(lead.Append(n).Append(dv).ToArray(), dtype: dtype, generator: generator);
            var g = randn(lead.Append(n).ToArray(), dtype: dtype, generator: generator) * Math.Pow(10, random.Next(-3, 4));
            var dO = trial % 3 == 2
                ? randn(lead.Append(dv).Append(n).ToArray(), dtype: dtype, generator: generator).transpose(-1, -2)
                : randn(lead.Append(n).Append(dv).ToArray(), dtype: dtype, generator: generator);
            string name = $"shape=[{string.Join(",", o.shape)}] {dtype}";
            double tolerance = dtype == ScalarType.Float64 ? 1e-14 : 1e-6;

            var (gHat, gPrime) = TokenLoops.ScaledOutputGradients(o, g, dO);
            var (gHatReference, gPrimeReference) = FastmaxFactorized.ScaledOutputGradientsByTensorOps(o, g, dO);
            Assert.Equal(gPrimeReference.shape, gPrime.shape);
            ErrorReport.Of($"Ĝ ({name})", gHat, gHatReference).Require(tolerance);
            ErrorReport.Of($"Ĝ′ ({name})", gPrime, gPrimeReference).Require(tolerance);
        }
    }
}
