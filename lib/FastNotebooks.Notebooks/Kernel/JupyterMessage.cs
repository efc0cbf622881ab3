using System.Globalization;
using System.Text.Json.Nodes;

namespace FastNotebooks.Notebooks.Kernel;

/// <summary>One message of the Jupyter messaging protocol (version 5.3), as sent over the wire.</summary>
/// <param name="Identities">ZeroMQ routing prefixes (the ROUTER socket's peer identity; a topic on iopub).</param>
/// <param name="Header">msg_id, session, username, date, msg_type, version.</param>
/// <param name="ParentHeader">The header of the request this message answers; empty for unsolicited messages.</param>
/// <param name="Metadata">Message metadata (usually empty).</param>
/// <param name="Content">The message body, shaped by its type.</param>
/// <param name="Buffers">Extra binary frames (unused by this kernel, kept for completeness).</param>
public sealed record JupyterMessage(IReadOnlyList<byte[]> Identities, JsonObject Header, JsonObject ParentHeader, JsonObject Metadata,
    JsonObject Content, IReadOnlyList<byte[]> Buffers)
{
    /// <summary>The protocol version this kernel speaks.</summary>
    public const string ProtocolVersion = "5.3";

    /// <summary>header.msg_type, e.g. "execute_request".</summary>
    public string MsgType => Header["msg_type"]?.GetValue<string>() ?? "";

    /// <summary>header.msg_id.</summary>
    public string MsgId => Header["msg_id"]?.GetValue<string>() ?? "";

    /// <summary>
    /// A new message of <paramref name="msgType"/> in <paramref name="session"/>. A reply or a broadcast caused by
    /// <paramref name="parent"/> carries its header as parent header, and a reply goes back to its identities.
    /// </summary>
    public static JupyterMessage Create(string msgType, JsonObject content, string session, JupyterMessage? parent = null,
        IReadOnlyList<byte[]>? identities = null)
    {
        var header = new JsonObject
        {
            ["msg_id"] = Guid.NewGuid().ToString("N"),
            ["session"] = session,
            ["username"] = "kernel",
            // Microseconds and an explicit zone: what jupyter_client's date parser expects.
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture),
            ["msg_type"] = msgType,
            ["version"] = ProtocolVersion,
        };
        var parentHeader = parent?.Header.DeepClone().AsObject() ?? new JsonObject();
        return new JupyterMessage(identities ?? Array.Empty<byte[]>(), header, parentHeader, new JsonObject(), content, Array.Empty<byte[]>());
    }
}
