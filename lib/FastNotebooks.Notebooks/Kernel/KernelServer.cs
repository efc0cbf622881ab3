using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using NetMQ;
using NetMQ.Sockets;

namespace FastNotebooks.Notebooks.Kernel;

/// <summary>
/// A Jupyter kernel (messaging protocol 5.3) over ZeroMQ: shell and control ROUTER sockets for requests,
/// an iopub PUB socket for broadcasts, a stdin ROUTER socket (bound, never used: cells cannot ask for input)
/// and a heartbeat REP socket echoing on its own thread. One poller thread owns the other four sockets;
/// cells run on <see cref="ExecuteHandler"/>'s thread, whose messages reach the sockets through a queue.
/// Every message is checked against the connection file's key; one that fails is dropped and logged.
/// </summary>
public sealed class KernelServer : IKernelChannels, IDisposable
{
    readonly ConnectionFile _connection;
    readonly MessageSigner _signer;
    readonly TextWriter _log;
    readonly string _session = Guid.NewGuid().ToString();
    readonly RouterSocket _shell = new();
    readonly RouterSocket _control = new();
    readonly RouterSocket _stdin = new();
    readonly PublisherSocket _iopub = new();
    readonly NetMQQueue<(NetMQSocket Socket, List<byte[]> Frames)> _outbox = new();
    readonly NetMQPoller _poller;
    readonly ExecuteHandler _handler;
    volatile bool _stopping;
    Thread? _pollerThread;

    /// <summary>Creates a kernel for <paramref name="connection"/>; <see cref="Run"/> binds and serves.</summary>
    /// <param name="connection">Ports and key from the front end's connection file.</param>
    /// <param name="workingDirectory">The notebook's folder (the front end starts the kernel there).</param>
    /// <param name="notebookName">Names cells in stack traces.</param>
    /// <param name="log">Where dropped messages and failures are logged (the kernel's stderr).</param>
    public KernelServer(ConnectionFile connection, string workingDirectory, string notebookName, TextWriter log)
    {
        _connection = connection;
        _signer = new MessageSigner(connection.Key, connection.SignatureScheme);
        _log = log;
        _handler = new ExecuteHandler(this, workingDirectory, notebookName, log);
        _poller = new NetMQPoller { _shell, _control, _stdin, _outbox };
        _shell.ReceiveReady += (_, e) => OnShell(Receive(e.Socket, "shell"));
        _control.ReceiveReady += (_, e) => OnControl(Receive(e.Socket, "control"));
        // Nothing is ever asked on stdin; read and discard so the socket's queue cannot grow.
        _stdin.ReceiveReady += (_, e) => e.Socket.ReceiveMultipartBytes();
        _outbox.ReceiveReady += (_, e) =>
        {
            while (e.Queue.TryDequeue(out var item, TimeSpan.Zero)) item.Socket.SendMultipartBytes(item.Frames);
        };
    }

    /// <summary>Binds the sockets and serves until a shutdown request; returns the process exit code.</summary>
    public int Run()
    {
        foreach (var socket in new NetMQSocket[] { _shell, _control, _stdin, _iopub })
            socket.Options.Linger = TimeSpan.FromSeconds(1); // the shutdown reply must leave before the process does
        _shell.Bind(_connection.Endpoint(_connection.ShellPort));
        _control.Bind(_connection.Endpoint(_connection.ControlPort));
        _stdin.Bind(_connection.Endpoint(_connection.StdinPort));
        _iopub.Bind(_connection.Endpoint(_connection.IopubPort));
        var heartbeat = new Thread(Heartbeat) { Name = "heartbeat", IsBackground = true };
        heartbeat.Start();

        // jupyter_client interrupts with SIGINT unless the kernelspec asks for messages; serve both. Cancel
        // keeps the default (terminate the process) from happening.
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            context.Cancel = true;
            _log.WriteLine("kernel: SIGINT received");
            _handler.Interrupt();
        });

        _handler.Start();
        _pollerThread = Thread.CurrentThread;
        Publish(null, "status", new JsonObject { ["execution_state"] = "starting" });
        _poller.Run();
        _stopping = true;
        heartbeat.Join(TimeSpan.FromSeconds(2));
        return 0;
    }

    /// <inheritdoc />
    public void Reply(JupyterMessage request, string msgType, JsonObject content) =>
        Send(_shell, JupyterMessage.Create(msgType, content, _session, request, request.Identities));

    /// <inheritdoc />
    public void Publish(JupyterMessage? parent, string msgType, JsonObject content)
    {
        var topic = Encoding.UTF8.GetBytes($"kernel.{_session}.{msgType}");
        Send(_iopub, JupyterMessage.Create(msgType, content, _session, parent, new[] { topic }));
    }

    /// <summary>Closes the sockets and the handler.</summary>
    public void Dispose()
    {
        _handler.Dispose();
        _poller.Dispose();
        foreach (var socket in new NetMQSocket[] { _shell, _control, _stdin, _iopub }) socket.Dispose();
        _outbox.Dispose();
        NetMQConfig.Cleanup(block: true);
    }

    void Send(NetMQSocket socket, JupyterMessage message)
    {
        var frames = Wire.Encode(message, _signer);
        // Sockets belong to the poller thread; other threads hand their frames over through the queue.
        if (Thread.CurrentThread == _pollerThread) socket.SendMultipartBytes(frames);
        else _outbox.Enqueue((socket, frames));
    }

    JupyterMessage? Receive(NetMQSocket socket, string channel)
    {
        var frames = socket.ReceiveMultipartBytes();
        if (Wire.TryDecode(frames, _signer, out var message, out var problem)) return message;
        _log.WriteLine($"kernel: dropped a message on {channel}: {problem}");
        return null;
    }

    void OnShell(JupyterMessage? request)
    {
        if (request is null) return;
        switch (request.MsgType)
        {
            case "execute_request" or "complete_request" or "inspect_request" or "is_complete_request":
                // Answered in arrival order on the cell thread; the busy/idle status comes from there.
                _handler.Enqueue(request);
                break;
            case "kernel_info_request":
                Answer(request, _shell, "kernel_info_reply", KernelInfo());
                break;
            case "comm_info_request":
                Answer(request, _shell, "comm_info_reply", new JsonObject { ["status"] = "ok", ["comms"] = new JsonObject() });
                break;
            case "history_request":
                Answer(request, _shell, "history_reply", new JsonObject { ["status"] = "ok", ["history"] = new JsonArray() });
                break;
            case "shutdown_request": // clients before protocol 5.2 send it on shell
                Shutdown(request, _shell);
                break;
            default:
                _log.WriteLine($"kernel: ignored shell message '{request.MsgType}'");
                break;
        }
    }

    void OnControl(JupyterMessage? request)
    {
        if (request is null) return;
        switch (request.MsgType)
        {
            case "interrupt_request":
                _handler.Interrupt();
                Answer(request, _control, "interrupt_reply", new JsonObject { ["status"] = "ok" });
                break;
            case "shutdown_request":
                Shutdown(request, _control);
                break;
            case "kernel_info_request":
                Answer(request, _control, "kernel_info_reply", KernelInfo());
                break;
            default:
                _log.WriteLine($"kernel: ignored control message '{request.MsgType}'");
                break;
        }
    }

    // On the poller thread: busy, the reply, idle, as for every request.
    void Answer(JupyterMessage request, NetMQSocket socket, string msgType, JsonObject content)
    {
        Publish(request, "status", new JsonObject { ["execution_state"] = "busy" });
        Send(socket, JupyterMessage.Create(msgType, content, _session, request, request.Identities));
        Publish(request, "status", new JsonObject { ["execution_state"] = "idle" });
    }

    void Shutdown(JupyterMessage request, NetMQSocket socket)
    {
        // A restart is the front end starting a new process after this one exits: nothing to keep here.
        var restart = request.Content["restart"]?.GetValue<bool>() ?? false;
        Answer(request, socket, "shutdown_reply", new JsonObject { ["status"] = "ok", ["restart"] = restart });
        _handler.Dispose();
        _poller.StopAsync();
    }

    void Heartbeat()
    {
        using var heartbeat = new ResponseSocket();
        heartbeat.Options.Linger = TimeSpan.Zero;
        heartbeat.Bind(_connection.Endpoint(_connection.HbPort));
        var frames = new List<byte[]>();
        while (!_stopping)
        {
            if (heartbeat.TryReceiveMultipartBytes(TimeSpan.FromMilliseconds(200), ref frames)) heartbeat.SendMultipartBytes(frames);
        }
    }

    static JsonObject KernelInfo() => new()
    {
        ["status"] = "ok",
        ["protocol_version"] = JupyterMessage.ProtocolVersion,
        ["implementation"] = "fastnotebooks",
        ["implementation_version"] = typeof(KernelServer).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0",
        ["language_info"] = new JsonObject
        {
            ["name"] = "C#",
            ["version"] = "14.0",
            ["mimetype"] = "text/x-csharp",
            ["file_extension"] = ".cs",
            ["pygments_lexer"] = "csharp",
            ["codemirror_mode"] = "text/x-csharp",
        },
        ["banner"] = "FastNotebooks C# kernel: Roslyn scripting with TorchSharp, Plotly.NET and the FastNotebooks library preloaded.",
        ["help_links"] = new JsonArray(),
    };
}
