using System.Diagnostics;

namespace FastNotebooks.Attention.Fastmax;

/// <summary>
/// Where a kernel call's time goes: a <see cref="KernelPlan"/> made <see cref="KernelPlan.WithClock">with a clock</see> adds
/// the wall time, call count and multiply-add work of each piece it runs (one stage per plan operation). A piece that runs
/// another inside it (features and a GEMM inside a projection, on the tensor-op fallback) counts once, as the outer piece.
/// What the pieces do not cover (extending the inputs, joining chunks, the output division) is the caller's total less
/// their sum. Thread-safe; with head-group threads the stages add the time of every thread, so they can exceed the wall time.
/// </summary>
public sealed class StageClock
{
    readonly object _gate = new();
    readonly List<string> _order = new();
    readonly Dictionary<string, (long Calls, long Ticks, double Flops)> _stages = new();

    [ThreadStatic] static int _depth;

    /// <summary>Starts timing one piece; disposing the scope adds it (only the outermost piece on a thread counts).</summary>
    internal Scope Time(string stage, double flops) => new(this, stage, flops, _depth++ == 0 ? Stopwatch.GetTimestamp() : -1);

    /// <summary>The stages in the order they first ran.</summary>
    public IReadOnlyList<StageTime> Stages
    {
        get
        {
            lock (_gate)
                return _order.Select(s => new StageTime(s, _stages[s].Calls, _stages[s].Ticks * 1000.0 / Stopwatch.Frequency, _stages[s].Flops)).ToList();
        }
    }

    /// <summary>Forgets every stage.</summary>
    public void Reset()
    {
        lock (_gate) { _order.Clear(); _stages.Clear(); }
    }

    void Add(string stage, long ticks, double flops)
    {
        lock (_gate)
        {
            if (!_stages.TryGetValue(stage, out var sum)) _order.Add(stage);
            _stages[stage] = (sum.Calls + 1, sum.Ticks + ticks, sum.Flops + flops);
        }
    }

    /// <summary>One timed piece (see <see cref="Time"/>).</summary>
    internal readonly struct Scope(StageClock clock, string stage, double flops, long started) : IDisposable
    {
        public void Dispose()
        {
            _depth--;
            if (started >= 0) clock.Add(stage, Stopwatch.GetTimestamp() - started, flops);
        }
    }
}

/// <summary>One stage of a <see cref="StageClock"/>: calls, total milliseconds, and flops (multiply and add counted apart; 0 where the piece is not arithmetic).</summary>
public sealed record StageTime(string Stage, long Calls, double Milliseconds, double Flops);
