using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.Cpu;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>The causal forward's last step, [numerator, g] = within + projected written as o = numerator / g and g, against the tensor ops.</summary>
public class AddThenDivideRowsTests
{
    public static TheoryData<ScalarType> Dtypes() => new() { ScalarType.Float64, ScalarType.Float32 };

    /// <summary>
    /// 40 random cases: B, H 1 to 3, G 1 to 4 chunks of 1 to 70 tokens, Dv = 1 to 40 (below, at and across the 16-lane vectors),
    /// o and g the tokens [start, start + G·c) of longer outputs, o's rows narrowed from wider rows every other case, g's heads
    /// transposed every third case, denominators of either sign scaled by 1e-3 to 1e3. The one pass must give the reference's bits
    /// in o and g, and leave every other entry of the outputs as it was.
    /// </summary>
    [Theory]
    [MemberData(nameof(Dtypes))]
    public void One_pass_gives_the_bits_of_the_tensor_ops(ScalarType dtype)
    {
        var random = new Random(41);
        var generator = new Generator(43);
        for (int trial = 0; trial < 40; trial++)
        {
            using var scope = NewDisposeScope();
            long b = random.Next(1, 4), h = random.Next(1, 4), count = random.Next(1, 5), size = trial == 0 ? 128 : random.Next(1, 71);
            long dv = trial == 1 ? 1 : trial == 2 ? 32 : random.Next(1, 41), start = random.Next(0, 6), n = start + count * size + random.Next(0, 6);
            long[] rowShape = { b, h, count, size, dv + 1 };
            var within = randn(rowShape, dtype: dtype, generator: generator);
            var projected = randn(rowShape, dtype: dtype, generator: generator);
            projected.select(-1, dv).mul_(Math.Pow(10, random.Next(-3, 4)));
            var (oWhole, gWhole, o, g) = Outputs(b, h, n, dv, start, count * size, dtype, narrowRows: trial % 2 == 1, transposedHeads: trial % 3 == 2);
            var (oReferenceWhole, gReferenceWhole, oReference, gReference) = Outputs(b, h, n, dv, start, count * size, dtype, narrowRows: trial % 2 == 1, transposedHeads: trial % 3 == 2);
            string name = $"B={b} H={h} G={count} c={size} Dv={dv} start={start} {dtype} trial={trial}";
            Assert.True(TokenLoops.SupportsAddThenDivideRows(within, projected, o, g), name);

            TokenLoops.AddThenDivideRows(within, projected, o, g);
            KernelPlan.TensorOps.AddThenDivide(within, projected, oReference, gReference);
            Assert.True(oWhole.eq(oReferenceWhole).all().item<bool>(), $"o ({name})");
            Assert.True(gWhole.eq(gReferenceWhole).all().item<bool>(), $"g ({name})");
            Assert.True(oWhole.narrow(2, start, count * size).narrow(-1, 0, dv).ne(-3).all().item<bool>(), $"o not written ({name})");
            Assert.Equal(0, oWhole.eq(-3).sum().item<long>() - (oWhole.numel() - b * h * count * size * dv));
        }
    }

    /// <summary>Outputs filled with −3 and the views of tokens [start, start + tokens) the step writes.</summary>
    static (Tensor OWhole, Tensor GWhole, Tensor O, Tensor G) Outputs(long b, long h, long n, long dv, long start, long tokens, ScalarType dtype,
        bool narrowRows, bool transposedHeads)
    {
        var oWhole = full(new[] { b, h, n, dv + (narrowRows ? 2 : 0) }, -3.0, dtype: dtype);
        var gWhole = transposedHeads ? full(new[] { h, b, n }, -3.0, dtype: dtype) : full(new[] { b, h, n }, -3.0, dtype: dtype);
        var o = oWhole.narrow(-1, 0, dv).narrow(2, start, tokens);
        var g = (transposedHeads ? gWhole.transpose(0, 1) : gWhole).narrow(2, start, tokens);
        return (oWhole, gWhole, o, g);
    }
}
