using System.Text.Json.Nodes;

namespace FastNotebooks.Notebooks.Kernel;

/// <summary>
/// How request handlers talk back to front ends. Implemented by <see cref="KernelServer"/>, which owns the
/// sockets: ZeroMQ sockets are not thread-safe, so calls from any thread are queued to the socket thread.
/// </summary>
public interface IKernelChannels
{
    /// <summary>Sends the reply to a shell request back to the client that sent it.</summary>
    void Reply(JupyterMessage request, string msgType, JsonObject content);

    /// <summary>Broadcasts on iopub (status, execute_input, stream, display_data, execute_result, error).</summary>
    void Publish(JupyterMessage? parent, string msgType, JsonObject content);
}
