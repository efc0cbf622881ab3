using System.Text;
using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Kernel;

/// <summary>
/// Publishes a running cell's outputs as they happen, so a training loop's progress shows while it runs.
/// Console text is batched: a loop printing thousands of lines becomes a few stream messages per second, not
/// thousands; any other output first flushes the text before it, so the order is the order of the cell.
/// </summary>
public sealed class LiveOutputs : IDisposable
{
    /// <summary>How long console text may wait before it is sent.</summary>
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(100);

    readonly object _gate = new();
    readonly StringBuilder _text = new();
    readonly Action<Output> _publish;
    readonly Timer _timer;
    string? _stream;
    bool _timerArmed;
    bool _disposed;

    /// <summary>Creates a publisher that hands finished outputs to <paramref name="publish"/>.</summary>
    public LiveOutputs(Action<Output> publish)
    {
        _publish = publish;
        _timer = new Timer(_ => Flush());
    }

    /// <summary>Takes one output or console write (a stream output) of the cell; any thread.</summary>
    public void Add(Output output)
    {
        lock (_gate)
        {
            if (output.OutputType != "stream" || _disposed)
            {
                FlushLocked();
                _publish(output);
                return;
            }
            if (_stream != output.Name) FlushLocked();
            _stream = output.Name;
            _text.Append(output.Text);
            if (_timerArmed) return;
            _timerArmed = true;
            _timer.Change(FlushInterval, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Sends the text still waiting; later outputs (from a task the cell left running) go out at once.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            FlushLocked();
            _disposed = true;
        }
        _timer.Dispose();
    }

    void Flush()
    {
        lock (_gate) FlushLocked();
    }

    void FlushLocked()
    {
        _timerArmed = false;
        if (_stream is null || _text.Length == 0) return;
        _publish(Output.Stream(_stream, _text.ToString()));
        _text.Clear();
        _stream = null;
    }
}
