using FastNotebooks.Data;

namespace FastNotebooks.Experiments;

/// <summary>
/// Small stand-ins made on the spot when a smoke run finds no cached data (tests and CI never download):
/// 28×28 images of ten bar patterns with noise, and a repetitive text.
/// </summary>
public static class SyntheticData
{
    /// <summary>Class c is a bright bar (vertical for c &lt; 5, horizontal otherwise) at a class-specific position, plus noise.</summary>
    public static (IdxArray Images, IdxArray Labels) Digits(int count, int seed)
    {
        var random = new Random(seed);
        var pixels = new byte[count * 28 * 28];
        var labels = new byte[count];
        for (int i = 0; i < count; i++)
        {
            int label = random.Next(10), at = 4 + 4 * (label % 5) + random.Next(-1, 2);
            labels[i] = (byte)label;
            for (int r = 0; r < 28; r++)
                for (int c = 0; c < 28; c++)
                {
                    bool bar = label < 5 ? Math.Abs(c - at) <= 1 : Math.Abs(r - at) <= 1;
                    pixels[i * 784 + r * 28 + c] = (byte)Math.Clamp((bar ? 200 : 0) + random.Next(0, 56), 0, 255);
                }
        }
        return (new IdxArray(new[] { count, 28, 28 }, pixels), new IdxArray(new[] { count }, labels));
    }

    public static string Text(int length, int seed)
    {
        var random = new Random(seed);
        string[] words = { "call", "me", "ishmael", "the", "whale", "sea", "ship", "captain", "white", "harpoon", "deep", "sailed" };
        var text = new System.Text.StringBuilder();
        while (text.Length < length) text.Append(words[random.Next(words.Length)]).Append(random.Next(8) == 0 ? ".\n" : " ");
        return text.ToString(0, length);
    }
}
