using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using FastNotebooks.Notebooks.Kernel;

namespace FastNotebooks.Notebooks.Tests.Kernel;

/// <summary>
/// The cell thread without sockets: requests go in, replies and broadcasts are recorded. In the Jupyter
/// collection because an interrupt is process-wide (<see cref="CellInterrupt"/>) and must not reach another test's cell.
/// </summary>
[Collection(JupyterCollection.Name)]
public sealed class ExecuteHandlerTests : IDisposable
{
    sealed class Recorder : IKernelChannels
    {
        public readonly BlockingCollection<(string MsgType, JsonObject Content, string Parent)> Replies = new();
        public readonly ConcurrentQueue<(string MsgType, JsonObject Content, string Parent)> Published = new();

        public void Reply(JupyterMessage request, string msgType, JsonObject content) => Replies.Add((msgType, content, request.MsgId));

        public void Publish(JupyterMessage? parent, string msgType, JsonObject content) => Published.Enqueue((msgType, content, parent?.MsgId ?? ""));
    }

    readonly Recorder _channels = new();
    readonly ExecuteHandler _handler;
    readonly string _folder = TestNotebooks.NewFolder();

    public ExecuteHandlerTests()
    {
        _handler = new ExecuteHandler(_channels, _folder, "handler.ipynb", TextWriter.Null);
        _handler.Start();
    }

    public void Dispose()
    {
        _handler.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    JupyterMessage Send(string code)
    {
        var request = JupyterMessage.Create("execute_request", new JsonObject { ["code"] = code, ["silent"] = false, ["stop_on_error"] = true }, "test");
        _handler.Enqueue(request);
        return request;
    }

    JsonObject ReplyTo(JupyterMessage request, TimeSpan? timeout = null)
    {
        Assert.True(_channels.Replies.TryTake(out var reply, timeout ?? Cli.SafetyLimit), $"no reply to {request.Content["code"]}");
        Assert.Equal((request.MsgId, "execute_reply"), (reply.Parent, reply.MsgType));
        return reply.Content;
    }

    List<string> PublishedFor(JupyterMessage request) =>
        _channels.Published.Where(p => p.Parent == request.MsgId)
            .Select(p => p.MsgType == "status" ? "status:" + p.Content["execution_state"] : p.MsgType).ToList();

    [Fact]
    public void Execute_broadcasts_busy_input_outputs_idle_and_replies_with_the_count()
    {
        var request = Send("Console.WriteLine(\"hi\");\n6 * 7");
        var reply = ReplyTo(request);

        Assert.Equal("ok", reply["status"]!.GetValue<string>());
        Assert.Equal(1, reply["execution_count"]!.GetValue<int>());
        Assert.True(SpinWait.SpinUntil(() => PublishedFor(request).Contains("status:idle"), Cli.SafetyLimit), "no idle status after the reply");
        Assert.Equal(new[] { "status:busy", "execute_input", "stream", "execute_result", "status:idle" }, PublishedFor(request));
    }

    // Each cell announces on stdout that it runs, then blocks or loops; the interrupt is sent when that line arrives.
    [Theory]
    [InlineData("var spins = 0L;\nwhile (true) { spins++; }")]
    [InlineData("for (;;) { try { System.Threading.Thread.SpinWait(10); } catch (OperationCanceledException) { } }")]
    [InlineData("System.Threading.Thread.Sleep(600000);")]
    [InlineData("var gate = new object();\nlock (gate) System.Threading.Monitor.Wait(gate);")]
    // A loop inside the library, which the kernel cannot rewrite: it checks FastNotebooks.Interruption itself.
    [InlineData("FastNotebooks.Verification.KernelErrorSweep.Run(ns: Enumerable.Repeat(64, 1_000_000)).Count()")]
    public void Interrupt_stops_a_running_cell_and_the_session_goes_on(string cell)
    {
        Assert.Equal("ok", ReplyTo(Send("var kept = 42;"))["status"]!.GetValue<string>());
        var running = Send("Console.WriteLine(\"running\");\n" + cell);
        Assert.True(SpinWait.SpinUntil(() => PublishedFor(running).Contains("stream"), Cli.SafetyLimit), "the cell never started");

        _handler.Interrupt();
        // No clock: the reply must come, however long a loaded machine takes; the safety limit only ends a hang.
        var reply = ReplyTo(running, Cli.SafetyLimit);

        Assert.Equal(("error", "OperationCanceledException"), (reply["status"]!.GetValue<string>(), reply["ename"]!.GetValue<string>()));
        var after = ReplyTo(Send("kept + 1"));
        Assert.Equal("ok", after["status"]!.GetValue<string>());
    }

    [Fact]
    public void Interrupt_with_no_cell_running_does_nothing()
    {
        _handler.Interrupt();
        Assert.Equal("ok", ReplyTo(Send("System.Threading.Thread.Sleep(50); 1"))["status"]!.GetValue<string>());
    }
}
