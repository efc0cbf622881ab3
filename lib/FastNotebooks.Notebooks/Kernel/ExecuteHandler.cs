using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using FastNotebooks.Notebooks.Engine;
using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Kernel;

/// <summary>
/// Serves the shell requests that need the notebook's <see cref="ScriptSession"/> (execute, complete, inspect,
/// is_complete) one at a time on a dedicated thread, in the order they arrived. A dedicated thread, not the
/// thread pool, so that an interrupt can reach the running cell: Thread.Interrupt ends a blocking wait
/// (Thread.Sleep, Join) and <see cref="CellInterrupt"/> stops loops.
/// </summary>
public sealed class ExecuteHandler : IDisposable
{
    readonly BlockingCollection<JupyterMessage> _queue = new();
    readonly IKernelChannels _channels;
    readonly TextWriter _log;
    readonly string _workingDirectory;
    readonly string _notebookName;
    readonly Thread _thread;
    readonly object _gate = new();
    bool _cellRunning;
    ScriptSession? _session;

    /// <summary>Creates the handler; <see cref="Start"/> starts its thread.</summary>
    /// <param name="channels">Where replies and broadcasts go.</param>
    /// <param name="workingDirectory">The notebook's folder: relative <c>#r</c> paths and files resolve against it.</param>
    /// <param name="notebookName">Names cells in stack traces.</param>
    /// <param name="log">The kernel's log (its stderr).</param>
    public ExecuteHandler(IKernelChannels channels, string workingDirectory, string notebookName, TextWriter log)
    {
        _channels = channels;
        _workingDirectory = workingDirectory;
        _notebookName = notebookName;
        _log = log;
        _thread = new Thread(Loop) { Name = "cells", IsBackground = true };
    }

    /// <summary>Starts the cell thread; it warms up the compiler before taking the first request.</summary>
    public void Start() => _thread.Start();

    /// <summary>Queues a shell request for the cell thread; ignored once the kernel is shutting down.</summary>
    public void Enqueue(JupyterMessage request)
    {
        try
        {
            _queue.Add(request);
        }
        catch (InvalidOperationException)
        {
            _log.WriteLine($"kernel: ignored '{request.MsgType}' during shutdown");
        }
    }

    /// <summary>Interrupts the running cell, if any (from the control channel or SIGINT; any thread).</summary>
    public void Interrupt()
    {
        lock (_gate)
        {
            if (!_cellRunning)
            {
                _log.WriteLine("kernel: interrupt with no cell running: nothing to stop");
                return;
            }
            CellInterrupt.Request();
            _thread.Interrupt();
        }
    }

    /// <summary>Stops taking requests; a running cell is left to the process exit.</summary>
    public void Dispose() => _queue.CompleteAdding();

    void Loop()
    {
        try
        {
            ScriptSession.WarmUpAsync().GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            _log.WriteLine($"kernel: warm-up failed (cells will still run): {e.Message}");
        }
        _session = new ScriptSession(_workingDirectory, _notebookName);

        while (Next() is { } request) Serve(request, Handle);
    }

    void Serve(JupyterMessage request, Action<JupyterMessage> handle)
    {
        _channels.Publish(request, "status", new JsonObject { ["execution_state"] = "busy" });
        try
        {
            handle(request);
        }
        catch (Exception e)
        {
            _log.WriteLine($"kernel: {request.MsgType} failed: {e}");
        }
        finally
        {
            _channels.Publish(request, "status", new JsonObject { ["execution_state"] = "idle" });
        }
    }

    /// <summary>
    /// The requests a front end had queued behind a failed cell (Run All), taken before the failure is replied to,
    /// so that a request sent after the reply is run, not aborted.
    /// </summary>
    List<JupyterMessage> TakeQueued()
    {
        var queued = new List<JupyterMessage>();
        while (_queue.TryTake(out var request)) queued.Add(request);
        return queued;
    }

    /// <summary>
    /// Answers the cells queued behind a failed cell "aborted" instead of running them, so a notebook stops at its
    /// first error as it does under the runner; other requests among them are served.
    /// </summary>
    void AbortQueuedCells(List<JupyterMessage> queuedBehind)
    {
        foreach (var queued in queuedBehind)
        {
            if (queued.MsgType == "execute_request")
                Serve(queued, r => _channels.Reply(r, "execute_reply", new JsonObject { ["status"] = "aborted", ["execution_count"] = _session!.ExecutionCount }));
            else
                Serve(queued, Handle);
        }
    }

    JupyterMessage? Next()
    {
        while (true)
        {
            try
            {
                return _queue.TryTake(out var request, Timeout.Infinite) ? request : null;
            }
            catch (ThreadInterruptedException)
            {
                // An interrupt that arrived as a cell was finishing; there is nothing left to stop.
            }
            catch (InvalidOperationException)
            {
                return null; // completed while waiting
            }
        }
    }

    void Handle(JupyterMessage request)
    {
        var session = _session!;
        switch (request.MsgType)
        {
            case "execute_request": Execute(request, session); break;
            case "complete_request": Complete(request, session); break;
            case "inspect_request": Inspect(request, session); break;
            case "is_complete_request": IsComplete(request); break;
            default: _log.WriteLine($"kernel: ignored shell message '{request.MsgType}'"); break;
        }
    }

    void Complete(JupyterMessage request, ScriptSession session)
    {
        var code = request.Content["code"]?.GetValue<string>() ?? "";
        var cursor = CodePoints.ToUtf16(code, request.Content["cursor_pos"]?.GetValue<int>() ?? code.Length);
        var completions = Completion.Complete(session, code, cursor);
        var (start, end) = (CodePoints.FromUtf16(code, completions.Start), CodePoints.FromUtf16(code, completions.End));
        // JupyterLab and VS Code read the kinds from this (experimental, but what ipykernel sends) to pick icons.
        var types = completions.Matches.Select(m => (JsonNode)new JsonObject
        {
            ["start"] = start, ["end"] = end, ["text"] = m, ["type"] = completions.Kinds[m],
        }).ToArray();
        _channels.Reply(request, "complete_reply", new JsonObject
        {
            ["status"] = "ok",
            ["matches"] = new JsonArray(completions.Matches.Select(m => (JsonNode)m).ToArray()),
            ["cursor_start"] = start,
            ["cursor_end"] = end,
            ["metadata"] = new JsonObject { ["_jupyter_types_experimental"] = new JsonArray(types) },
        });
    }

    void Inspect(JupyterMessage request, ScriptSession session)
    {
        var code = request.Content["code"]?.GetValue<string>() ?? "";
        var cursor = CodePoints.ToUtf16(code, request.Content["cursor_pos"]?.GetValue<int>() ?? code.Length);
        var text = Completion.Inspect(session, code, cursor);
        _channels.Reply(request, "inspect_reply", new JsonObject
        {
            ["status"] = "ok",
            ["found"] = text is not null,
            ["data"] = text is null ? new JsonObject() : new JsonObject { [DisplayFormatting.Plain] = text },
            ["metadata"] = new JsonObject(),
        });
    }

    void IsComplete(JupyterMessage request)
    {
        var code = request.Content["code"]?.GetValue<string>() ?? "";
        var options = CSharpParseOptions.Default.WithKind(SourceCodeKind.Script).WithLanguageVersion(LanguageVersion.Latest);
        // Front ends with a console (jupyter console) send Enter as execute only when the submission is complete.
        var complete = SyntaxFactory.IsCompleteSubmission(CSharpSyntaxTree.ParseText(code, options));
        var reply = new JsonObject { ["status"] = complete ? "complete" : "incomplete" };
        if (!complete) reply["indent"] = "";
        _channels.Reply(request, "is_complete_reply", reply);
    }

    void Execute(JupyterMessage request, ScriptSession session)
    {
        var code = request.Content["code"]?.GetValue<string>() ?? "";
        var silent = request.Content["silent"]?.GetValue<bool>() ?? false;
        var count = session.ExecutionCount + 1;
        if (!silent) _channels.Publish(request, "execute_input", new JsonObject { ["code"] = code, ["execution_count"] = count });

        Output? error = null;
        void Publish(Output output)
        {
            if (output.OutputType == "error")
            {
                // Whatever the interrupt broke into (a loop's check, Thread.Sleep), it reads as one thing.
                if (CellInterrupt.Requested) (output.Ename, output.Evalue) = (nameof(OperationCanceledException), CellInterrupt.Message);
                error = output;
            }
            if (silent && output.OutputType == "execute_result") return;
            _channels.Publish(request, output.OutputType, OutputMessages.Content(output));
        }

        var result = RunCell(session, code, count, Publish);

        var reply = new JsonObject { ["execution_count"] = result.ExecutionCount };
        if (error is null)
        {
            reply["status"] = "ok";
            reply["user_expressions"] = new JsonObject();
            reply["payload"] = new JsonArray();
        }
        else
        {
            reply["status"] = "error";
            reply["ename"] = error.Ename;
            reply["evalue"] = error.Evalue;
            reply["traceback"] = new JsonArray(error.Traceback.Select(l => (JsonNode)l).ToArray());
        }
        var abort = error is not null && (request.Content["stop_on_error"]?.GetValue<bool>() ?? true);
        var queuedBehind = abort ? TakeQueued() : new List<JupyterMessage>();
        _channels.Reply(request, "execute_reply", reply);
        AbortQueuedCells(queuedBehind);
    }

    CellResult RunCell(ScriptSession session, string code, int count, Action<Output> publish)
    {
        CellInterrupt.Reset();
        var live = new LiveOutputs(publish);
        lock (_gate) _cellRunning = true;
        try
        {
            // The rewrite counts as running: an interrupt that comes while it parses (seconds on a cold, slow machine,
            // after execute_input went out) is then kept for the cell instead of being dropped.
            var source = InterruptRewriter.Rewrite(NotebookExecutor.WithoutKernelMagics(code));
            // Synchronous cells run on this thread to the end; an awaiting cell leaves this thread blocked here.
            return session.ExecuteAsync(source, count, observer: live.Add).GetAwaiter().GetResult();
        }
        catch (ThreadInterruptedException)
        {
            // The cell awaits something (Task.Delay, I/O) on another thread; it is abandoned, not stopped, and
            // finishes in the background. Its variables may then still appear in the session.
            var error = Output.Error(nameof(OperationCanceledException), CellInterrupt.Message,
                new[] { $"cell {count}: {CellInterrupt.Message} It was waiting on a task, which goes on in the background." });
            live.Add(error);
            return new CellResult(new[] { error }, count, new CellError(count, null, "exception", CellInterrupt.Message));
        }
        finally
        {
            live.Dispose();
            EndCell();
        }
    }

    void EndCell()
    {
        while (true)
        {
            try
            {
                lock (_gate) _cellRunning = false;
                break;
            }
            catch (ThreadInterruptedException)
            {
                // Interrupt() held the lock and interrupted this thread while it waited for it: try again.
            }
        }
        CellInterrupt.Reset();
        // From here on no interrupt targets this thread; swallow one that came after the cell's last wait.
        try { Thread.Sleep(0); }
        catch (ThreadInterruptedException) { }
    }
}
