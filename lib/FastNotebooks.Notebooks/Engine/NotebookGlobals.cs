using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Engine;

/// <summary>
/// Members every cell can call without a prefix (Roslyn's globals object): <c>display(x)</c>, as in
/// .NET Interactive. Lower-case on purpose: that is the name notebooks written for .NET Interactive use.
/// </summary>
public class NotebookGlobals
{
    /// <summary>Shows <paramref name="value"/> as a display_data output of the running cell (text/html for objects, text/plain for strings).</summary>
    public void display(object? value) => Emit(DisplayFormatting.Bundle(value));

    /// <summary>Shows already-formatted <paramref name="content"/> with an explicit mime type, e.g. display(svg, "image/svg+xml").</summary>
    public void display(string content, string mimeType) => Emit(DisplayFormatting.Bundle(content, mimeType));

    static void Emit(IReadOnlyDictionary<string, string> bundle)
    {
        var capture = ConsoleRouter.Capture
            ?? throw new InvalidOperationException("display() was called outside a running cell.");
        capture.Add(Output.Display(bundle));
    }
}
