using FastNotebooks.Notebooks.Engine;

// A namespace of its own: cells import it by default, and it holds nothing but what notebooks call.
namespace FastNotebooks.Notebooks.Scripting;

/// <summary><c>x.Display()</c>, the extension-method form .NET Interactive notebooks also use.</summary>
public static class DisplayExtensions
{
    /// <summary>Shows <paramref name="value"/> as a display_data output of the running cell and returns it.</summary>
    public static T Display<T>(this T value)
    {
        new NotebookGlobals().display(value);
        return value;
    }
}
