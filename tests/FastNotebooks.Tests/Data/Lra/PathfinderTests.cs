using FastNotebooks.Data.Lra;

namespace FastNotebooks.Tests.Data.Lra;

public class PathfinderTests
{
    [Theory]
    [InlineData(32, 9, 3)]
    [InlineData(16, 5, 1)]
    public void Labels_agree_with_flood_fill(int size, int dashes, int distractors)
    {
        var options = new PathfinderOptions { Size = size, PathDashes = dashes, Distractors = distractors };
        var examples = new PathfinderGenerator(options, seed: 9).Generate(200);
        Assert.Equal(100, examples.Count(e => e.Connected));
        foreach (var example in examples)
        {
            Assert.Equal(example.Connected, PathfinderGenerator.Connected(example));
            Assert.Equal(2, example.Pixels.Count(p => p == 2));
        }
    }

    [Fact]
    public void Flood_fill_follows_dashes_but_not_wider_gaps()
    {
        // Dots at columns 1 and 7 of row 2; lit pixels 1,2 · 4,5 · 7 (gaps of one pixel) join them.
        var pixels = new byte[8 * 8];
        foreach (var c in new[] { 1, 2, 4, 5, 7 }) pixels[2 * 8 + c] = 1;
        pixels[2 * 8 + 1] = pixels[2 * 8 + 7] = 2;
        Assert.True(PathfinderGenerator.Connected(new PathfinderExample(8, pixels, true, (2, 1), (2, 7))));
        pixels[2 * 8 + 4] = pixels[2 * 8 + 5] = 0;   // now a gap of four pixels
        Assert.False(PathfinderGenerator.Connected(new PathfinderExample(8, pixels, false, (2, 1), (2, 7))));
    }

    [Fact]
    public void Same_seed_gives_the_same_images()
    {
        var a = new PathfinderGenerator(new PathfinderOptions(), 3).Generate(4);
        var b = new PathfinderGenerator(new PathfinderOptions(), 3).Generate(4);
        Assert.True(a.Zip(b).All(p => p.First.Pixels.SequenceEqual(p.Second.Pixels)));
    }
}
