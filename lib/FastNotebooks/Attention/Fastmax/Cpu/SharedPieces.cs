using System.Runtime.ExceptionServices;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// A loop's pieces shared between the calling thread and pool threads that each take the next piece in turn; a pool thread
/// that has not started by the time the pieces run out is called off instead of waited for. Right after a libtorch op its
/// OpenMP threads still spin for a while, and a pool thread then started up to milliseconds late on the 2-core machine this
/// was measured on (<see cref="TokenLoops.MinWorkPerThread"/>): with the work split in equal halves up front, the loop
/// waited for the late half; here the calling thread takes its pieces meanwhile. Which thread computes a piece does not change
/// what it computes, so results do not depend on the thread count or on timing.
/// </summary>
internal sealed class SharedPieces
{
    readonly long _pieces;
    readonly Action<long> _body;
    long _next = -1;
    int _active;                       // pool threads inside Run
    int _closed;                       // 1 once the caller has finished its pieces: late pool threads return at once
    ExceptionDispatchInfo? _failure;

    SharedPieces(long pieces, Action<long> body) => (_pieces, _body) = (pieces, body);

    /// <summary>body(piece) for every piece in [0, pieces), on the calling thread and up to <paramref name="threads"/> − 1 pool threads.</summary>
    public static void For(long pieces, int threads, Action<long> body)
    {
        if (threads <= 1 || pieces <= 1)
        {
            for (long piece = 0; piece < pieces; piece++) body(piece);
            return;
        }
        var shared = new SharedPieces(pieces, body);
        for (int helper = 1; helper < Math.Min(threads, pieces); helper++)
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.Help(), shared, preferLocal: false);
        shared.Run();
        Interlocked.Exchange(ref shared._closed, 1);
        var wait = new SpinWait();
        while (Volatile.Read(ref shared._active) > 0) wait.SpinOnce();
        shared._failure?.Throw();
    }

    void Help()
    {
        Interlocked.Increment(ref _active);
        try
        {
            // The increment above comes before this read, and the caller's close before its read of _active, so either the
            // caller waits for this thread or this thread sees the loop closed.
            if (Volatile.Read(ref _closed) == 0) Run();
        }
        finally { Interlocked.Decrement(ref _active); }
    }

    void Run()
    {
        try
        {
            for (long piece; (piece = Interlocked.Increment(ref _next)) < _pieces;) _body(piece);
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _failure, ExceptionDispatchInfo.Capture(e), null);
            Interlocked.Exchange(ref _next, _pieces);   // the others stop taking pieces
        }
    }
}
