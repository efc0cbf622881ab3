using System.Text;

namespace FastNotebooks.Notebooks.Engine;

/// <summary>
/// Console.Out and Console.Error are process-wide, but several sessions may run at once (tests run in
/// parallel). So the console is replaced once by writers that send text to the cell capture of the
/// current async flow, and to the original console when no cell is running (the runner's own output).
/// </summary>
public static class ConsoleRouter
{
    static readonly AsyncLocal<CellCapture?> Current = new();
    static readonly object Gate = new();
    static bool _installed;

    /// <summary>The console's stdout writer before routing was installed (the child process reports progress on it).</summary>
    public static TextWriter OriginalOut { get; private set; } = Console.Out;

    /// <summary>The console's stderr writer before routing was installed.</summary>
    public static TextWriter OriginalError { get; private set; } = Console.Error;

    /// <summary>The capture of the cell running on this async flow, if any.</summary>
    public static CellCapture? Capture => Current.Value;

    /// <summary>Installs the routing writers once per process.</summary>
    public static void Install()
    {
        lock (Gate)
        {
            if (_installed) return;
            OriginalOut = Console.Out;
            OriginalError = Console.Error;
            Console.SetOut(new RoutingWriter("stdout", OriginalOut));
            Console.SetError(new RoutingWriter("stderr", OriginalError));
            _installed = true;
        }
    }

    /// <summary>Routes this async flow's console output to <paramref name="capture"/> until disposed.</summary>
    public static IDisposable Enter(CellCapture capture)
    {
        Install();
        var previous = Current.Value;
        Current.Value = capture;
        return new Restore(previous);
    }

    sealed class Restore(CellCapture? previous) : IDisposable
    {
        public void Dispose() => Current.Value = previous;
    }

    sealed class RoutingWriter(string stream, TextWriter fallback) : TextWriter
    {
        public override Encoding Encoding => fallback.Encoding;

        public override void Write(char value) => Write(value.ToString());

        public override void Write(string? value)
        {
            if (value is null) return;
            if (Current.Value is { } capture) capture.Write(stream, value);
            else fallback.Write(value);
        }

        public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));

        public override void WriteLine(string? value) => Write((value ?? "") + "\n");

        public override void WriteLine() => Write("\n");

        public override void Flush()
        {
            if (Current.Value is null) fallback.Flush();
        }
    }
}
