using System.Text;
using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Engine;

/// <summary>
/// Collects one cell's outputs in the order they happen: console text becomes stream outputs, display
/// calls become display_data. Adjacent writes to the same stream merge into one output, as Jupyter shows them.
/// Cells may write from other threads (Task.Run, Parallel.For), hence the lock. An optional observer sees
/// every write and output as it happens (the Jupyter kernel shows them while the cell runs).
/// </summary>
public sealed class CellCapture
{
    readonly object _gate = new();
    readonly List<Output> _outputs = new();
    readonly Action<Output>? _observer;
    readonly StringBuilder _pending = new();
    string? _pendingStream;

    /// <summary>The session the cell runs in; display formatting asks it whether plotly.js was already emitted.</summary>
    public ScriptSession Session { get; }

    /// <summary>Creates a capture for one cell of <paramref name="session"/>.</summary>
    /// <param name="session">The session the cell runs in.</param>
    /// <param name="observer">Called, in order, with each console write (as a stream output) and each output as it is added.</param>
    public CellCapture(ScriptSession session, Action<Output>? observer = null)
    {
        Session = session;
        _observer = observer;
    }

    /// <summary>Appends console text to the named stream ("stdout" or "stderr").</summary>
    public void Write(string stream, string text)
    {
        if (text.Length == 0) return;
        lock (_gate)
        {
            if (_pendingStream != stream) FlushLocked();
            _pendingStream = stream;
            _pending.Append(text);
            _observer?.Invoke(Output.Stream(stream, text));
        }
    }

    /// <summary>Appends a finished output (display, result or error) after any pending console text.</summary>
    public void Add(Output output)
    {
        lock (_gate)
        {
            FlushLocked();
            _outputs.Add(output);
            _observer?.Invoke(output);
        }
    }

    /// <summary>All outputs so far, pending console text included.</summary>
    public List<Output> Outputs()
    {
        lock (_gate)
        {
            FlushLocked();
            return new List<Output>(_outputs);
        }
    }

    void FlushLocked()
    {
        if (_pendingStream is null || _pending.Length == 0) return;
        _outputs.Add(Output.Stream(_pendingStream, _pending.ToString()));
        _pending.Clear();
        _pendingStream = null;
    }
}
