using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.Cpu;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>The token-column kernels' block transposes against the element-by-element copies.</summary>
public unsafe class RegisterTransposeTests
{
    /// <summary>
    /// 300 random cases: 1 to 32 tokens of strips 32 and 48 wide, widths 1 to 70 (below, at and across 16-column blocks),
    /// row strides up to 8 past the width. Rows to columns must equal the reference everywhere (zeros past the last token
    /// included); columns to rows must write exactly the reference's entries (or, adding, each plus what was there) and leave
    /// every other one of the rows as it was.
    /// </summary>
    [Fact]
    public void Block_transposes_equal_the_element_copies()
    {
        var random = new Random(12);
        for (int trial = 0; trial < 300; trial++)
        {
            int stripWidth = trial % 3 == 2 ? 48 : 32;
            int tokens = trial < 4 ? new[] { 1, 16, 31, 32 }[trial] : random.Next(1, stripWidth + 1);
            int width = trial < 4 ? 33 : random.Next(1, 71), ld = width + random.Next(0, 9);
            string name = $"tokens={tokens} width={width} ld={ld} strip={stripWidth}";
            var rows = Enumerable.Range(0, tokens * ld).Select(_ => (float)random.NextDouble()).ToArray();
            var (columns, expectedColumns) = (Stale(width * stripWidth, random), new float[width * stripWidth]);
            fixed (float* pr = rows, pc = columns, pe = expectedColumns)
            {
                RegisterTranspose.ToColumns(pr, ld, tokens, width, pc, stripWidth);
                RegisterTranspose.ToColumnsByElements(pr, ld, tokens, width, pe, stripWidth);
            }
            Assert.True(expectedColumns.SequenceEqual(columns), $"to columns, {name}");

            var source = Enumerable.Range(0, width * stripWidth).Select(_ => (float)random.NextDouble()).ToArray();
            var back = Stale(tokens * ld, random);
            var expectedBack = (float[])back.Clone();
            fixed (float* ps = source, pb = back, pe = expectedBack)
            {
                RegisterTranspose.FromColumns(ps, stripWidth, tokens, width, pb, ld);
                RegisterTranspose.FromColumnsByElements(ps, stripWidth, tokens, width, pe, ld);
            }
            Assert.True(expectedBack.SequenceEqual(back), $"from columns, {name}");

            // Added to the rows: each entry the reference's plus what the row held (one float32 addition), the rest as it was.
            var sum = Stale(tokens * ld, random);
            var expectedSum = (float[])sum.Clone();
            for (int t = 0; t < tokens; t++)
                for (int k = 0; k < width; k++) expectedSum[t * ld + k] += source[k * stripWidth + t];
            fixed (float* ps = source, pa = sum) RegisterTranspose.FromColumns(ps, stripWidth, tokens, width, pa, ld, add: true);
            Assert.True(expectedSum.SequenceEqual(sum), $"added from columns, {name}");
        }
    }

    /// <summary>
    /// Tensor transposes (the causal kernel's chunk blocks as a GEMM's B), 80 random cases: 0 to 3 leading dims, 0 to 70 tokens and
    /// widths (whole 16 × 16 blocks, tails and both), rows narrowed from wider rows and tokens from a longer sequence, a permuted
    /// leading dim. Bit for bit libtorch's transpose(-1, -2).contiguous(); float64, columns that are not unit-stride and a tensor
    /// that wants a gradient go to that copy.
    /// </summary>
    [Avx512Fact]
    public void Tensor_transposes_equal_libtorch()
    {
        var random = new Random(31);
        var generator = new Generator(37);
        for (int trial = 0; trial < 80; trial++)
        {
            using var scope = NewDisposeScope();
            long tokens = trial < 3 ? new long[] { 0, 16, 128 }[trial] : random.Next(0, 71), width = trial < 3 ? 32 : random.Next(0, 71);
            long[] lead = Enumerable.Range(0, random.Next(0, 4)).Select(_ => (long)random.Next(1, 4)).ToArray();
            long extraTokens = random.Next(0, 4), extraWidth = random.Next(0, 4);
            var x = randn(lead.Append(tokens + extraTokens).Append(width + extraWidth).ToArray(), generator: generator)
                .narrow(-2, extraTokens, tokens).narrow(-1, 0, width);
            if (lead.Length >= 2 && random.Next(2) == 0) x = x.transpose(0, 1);
            string name = $"lead=[{string.Join(",", lead)}] tokens={tokens} width={width} strides=[{string.Join(",", x.stride())}]";
            Assert.True(RegisterTranspose.SupportsTransposed(x), name);
            var t = RegisterTranspose.Transposed(x);
            Assert.True(t.is_contiguous(), name);
            Assert.True(Bits.Same(t, x.transpose(-1, -2).contiguous()), name);
        }
        using var x64 = randn(3, 20, 17, dtype: ScalarType.Float64);
        using var columns = randn(20, 17).transpose(0, 1);
        using var graph = randn(20, 17).requires_grad_();
        Assert.False(RegisterTranspose.SupportsTransposed(x64));
        Assert.False(RegisterTranspose.SupportsTransposed(columns));
        Assert.False(RegisterTranspose.SupportsTransposed(graph));
        Assert.True(Bits.Same(RegisterTranspose.Transposed(x64), x64.transpose(-1, -2).contiguous()));
        Assert.True(Bits.Same(RegisterTranspose.Transposed(columns), columns.transpose(-1, -2).contiguous()));
        Assert.True(RegisterTranspose.Transposed(graph).requires_grad);
    }

    /// <summary>Memory that held something else before: negative values, unlike the test's data.</summary>
    static float[] Stale(int length, Random random) => Enumerable.Range(0, length).Select(_ => -1f - (float)random.NextDouble()).ToArray();
}
