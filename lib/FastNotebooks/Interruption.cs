namespace FastNotebooks;

/// <summary>
/// Lets a front end stop the library's long loops (training steps, sweeps) between units of work: they call
/// <see cref="ThrowIfRequested"/>, and the Jupyter kernel's interrupt sets the flag. A loop inside the library is
/// compiled ahead of time, so the kernel cannot insert its own checks there. Nothing sets the flag outside a kernel.
/// </summary>
public static class Interruption
{
    static volatile bool _requested;

    /// <summary>True while an interrupt is pending.</summary>
    public static bool Requested => _requested;

    /// <summary>Throws <see cref="OperationCanceledException"/> when an interrupt is pending.</summary>
    public static void ThrowIfRequested()
    {
        if (_requested) throw new OperationCanceledException("Interrupted.");
    }

    /// <summary>Asks the running work to stop at its next check.</summary>
    public static void Request() => _requested = true;

    /// <summary>Clears the request (when the interrupted work has ended).</summary>
    public static void Reset() => _requested = false;
}
