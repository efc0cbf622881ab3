using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.Cpu;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>The kernels' work sharing: every piece runs exactly once, whatever the thread count, and failures reach the caller.</summary>
public class SharedPiecesTests
{
    [Theory]
    [InlineData(0, 2)]
    [InlineData(1, 4)]
    [InlineData(7, 1)]
    [InlineData(7, 2)]
    [InlineData(1000, 3)]
    [InlineData(100_000, 8)]
    public void Every_piece_runs_once(long pieces, int threads)
    {
        var runs = new int[pieces];
        for (int repeat = 0; repeat < 20; repeat++)
        {
            Array.Clear(runs);
            SharedPieces.For(pieces, threads, piece => Interlocked.Increment(ref runs[piece]));
            Assert.All(runs, count => Assert.Equal(1, count));
        }
    }

    [Fact]
    public void Ranges_cover_the_items_without_overlap()
    {
        foreach (var (items, threads) in new[] { (1L, 2), (15L, 2), (16L, 2), (17L, 2), (1001L, 3), (5L, 8) })
        {
            var covered = new int[items];
            TokenLoops.ForRanges(items, threads, (start, count) =>
            {
                Assert.True(count > 0 && start >= 0 && start + count <= items, $"range [{start}, {start + count}) of {items}");
                for (long i = start; i < start + count; i++) Interlocked.Increment(ref covered[i]);
            });
            Assert.All(covered, count => Assert.Equal(1, count));
        }
    }

    [Fact]
    public void A_failing_piece_fails_the_loop()
    {
        var error = Assert.Throws<InvalidOperationException>(() =>
            SharedPieces.For(64, 2, piece => { if (piece == 40) throw new InvalidOperationException("piece 40"); }));
        Assert.Equal("piece 40", error.Message);
    }
}
