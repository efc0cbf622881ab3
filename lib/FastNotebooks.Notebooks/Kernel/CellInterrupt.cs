namespace FastNotebooks.Notebooks.Kernel;

/// <summary>
/// The cooperative half of interrupting a cell. .NET cannot abort a running thread, so the kernel compiles
/// every loop of a cell with a call to <see cref="ThrowIfRequested"/> at the top of its body
/// (<see cref="InterruptRewriter"/>); an interrupt sets the flag and the next iteration throws. Blocking waits
/// (Thread.Sleep, Join, Monitor.Wait) are ended by Thread.Interrupt instead (<see cref="ExecuteHandler"/>).
/// The flag is the library's <see cref="Interruption"/>, so training loops and sweeps inside the library stop too.
/// Public because cell code calls it.
/// </summary>
public static class CellInterrupt
{
    /// <summary>The message of the exception an interrupted cell ends with.</summary>
    public const string Message = "The cell was interrupted.";

    /// <summary>Throws <see cref="OperationCanceledException"/> when the running cell has been interrupted.</summary>
    public static void ThrowIfRequested()
    {
        // Stays set until the cell ends, so a loop that catches the exception still stops at its next iteration.
        if (Interruption.Requested) throw new OperationCanceledException(Message);
    }

    /// <summary>True while an interrupt of the running cell is pending.</summary>
    public static bool Requested => Interruption.Requested;

    internal static void Request() => Interruption.Request();

    internal static void Reset() => Interruption.Reset();
}
