using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.Cpu;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>The token-column kernels' block transposes against the element-by-element copies.</summary>
public unsafe class RegisterTransposeTests
{
    /// <summary>
    /// 300 random cases: 1 to 32 tokens of strips 32 and 48 wide, widths 1 to 70 (below, at and across 16-column blocks),
    /// row strides up to 8 past the width. Rows to columns must equal the reference everywhere (zeros past the last token
    /// included); columns to rows must write exactly the reference's entries and leave every other one of the rows as it was.
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
        }
    }

    /// <summary>Memory that held something else before: negative values, unlike the test's data.</summary>
    static float[] Stale(int length, Random random) => Enumerable.Range(0, length).Select(_ => -1f - (float)random.NextDouble()).ToArray();
}
