using System.Text.Json.Nodes;

namespace FastNotebooks.Notebooks.Kernel;

/// <summary>
/// The connection file a Jupyter front end writes before starting a kernel: where to bind the five
/// sockets and the key that signs every message.
/// </summary>
/// <param name="Transport">"tcp" (the only transport this kernel binds).</param>
/// <param name="Ip">Address to bind, usually 127.0.0.1.</param>
/// <param name="ShellPort">Requests from clients (ROUTER).</param>
/// <param name="IopubPort">Broadcast of outputs and status (PUB).</param>
/// <param name="StdinPort">Input requests to the front end (ROUTER); this kernel never asks for input.</param>
/// <param name="ControlPort">Interrupt and shutdown, served even while a cell runs (ROUTER).</param>
/// <param name="HbPort">Heartbeat echo (REP).</param>
/// <param name="Key">HMAC key; empty means messages are not signed.</param>
/// <param name="SignatureScheme">"hmac-sha256" (the only scheme this kernel accepts).</param>
public sealed record ConnectionFile(string Transport, string Ip, int ShellPort, int IopubPort, int StdinPort, int ControlPort, int HbPort,
    string Key, string SignatureScheme)
{
    /// <summary>Reads a connection file; throws <see cref="FormatException"/> naming the field that is missing or unusable.</summary>
    public static ConnectionFile Load(string path)
    {
        var json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new FormatException($"{path}: not a JSON object");
        string Text(string name, string? fallback = null) =>
            json[name]?.GetValue<string>() ?? fallback ?? throw new FormatException($"{path}: missing '{name}'");
        int Port(string name) => json[name]?.GetValue<int>() ?? throw new FormatException($"{path}: missing '{name}'");

        var file = new ConnectionFile(Text("transport", "tcp"), Text("ip", "127.0.0.1"), Port("shell_port"), Port("iopub_port"),
            Port("stdin_port"), Port("control_port"), Port("hb_port"), Text("key", ""), Text("signature_scheme", "hmac-sha256"));
        if (file.Transport != "tcp") throw new FormatException($"{path}: transport '{file.Transport}' is not supported (use tcp)");
        return file;
    }

    /// <summary>The ZeroMQ endpoint of <paramref name="port"/>, e.g. tcp://127.0.0.1:5555.</summary>
    public string Endpoint(int port) => $"{Transport}://{Ip}:{port}";
}
