using System.Globalization;

namespace FastNotebooks.Notebooks.Kernel;

/// <summary>
/// Jupyter counts cursor positions in Unicode code points (protocol 5.2 and later); .NET strings index UTF-16
/// units. They differ only after characters outside the Basic Multilingual Plane (emoji), but then by one per character.
/// </summary>
public static class CodePoints
{
    /// <summary>The UTF-16 index of code point <paramref name="codePoint"/> in <paramref name="text"/>, clamped to its length.</summary>
    public static int ToUtf16(string text, int codePoint)
    {
        var index = 0;
        for (var n = 0; n < codePoint && index < text.Length; n++)
            index += char.IsHighSurrogate(text[index]) && index + 1 < text.Length ? 2 : 1;
        return index;
    }

    /// <summary>The number of code points in the first <paramref name="utf16Index"/> UTF-16 units of <paramref name="text"/>.</summary>
    public static int FromUtf16(string text, int utf16Index)
    {
        var prefix = text.AsSpan(0, Math.Min(utf16Index, text.Length));
        var count = 0;
        foreach (var _ in prefix.EnumerateRunes()) count++;
        return count;
    }
}
