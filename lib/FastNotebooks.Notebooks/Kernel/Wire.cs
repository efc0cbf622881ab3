using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FastNotebooks.Notebooks.Kernel;

/// <summary>
/// The frames of a Jupyter message on a ZeroMQ socket:
/// <c>[identities…, "&lt;IDS|MSG&gt;", signature, header, parent_header, metadata, content, buffers…]</c>,
/// the four dictionaries as UTF-8 JSON and the signature over exactly those four frames.
/// </summary>
public static class Wire
{
    /// <summary>The frame separating routing identities from the message.</summary>
    public static readonly byte[] Delimiter = "<IDS|MSG>"u8.ToArray();

    // HTML outputs are full of < and >; escaping them as \u003C is valid JSON but triples their size.
    static readonly JsonSerializerOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The frames of <paramref name="message"/>, signed by <paramref name="signer"/>.</summary>
    public static List<byte[]> Encode(JupyterMessage message, MessageSigner signer)
    {
        var parts = new[] { message.Header, message.ParentHeader, message.Metadata, message.Content }
            .Select(d => Encoding.UTF8.GetBytes(d.ToJsonString(Compact))).ToArray();
        var frames = new List<byte[]>(message.Identities);
        frames.Add(Delimiter);
        frames.Add(Encoding.ASCII.GetBytes(signer.Sign(parts)));
        frames.AddRange(parts);
        frames.AddRange(message.Buffers);
        return frames;
    }

    /// <summary>
    /// Parses received frames. Returns false, with the reason in <paramref name="problem"/>, for frames
    /// without a delimiter, with too few parts, with a signature that does not match, or with malformed JSON:
    /// such a message must be dropped, never answered.
    /// </summary>
    public static bool TryDecode(IReadOnlyList<byte[]> frames, MessageSigner signer, out JupyterMessage? message, out string? problem)
    {
        message = null;
        var delimiter = -1;
        for (var i = 0; i < frames.Count; i++)
        {
            if (frames[i].AsSpan().SequenceEqual(Delimiter)) { delimiter = i; break; }
        }
        if (delimiter < 0) { problem = "no <IDS|MSG> delimiter"; return false; }
        if (frames.Count < delimiter + 6) { problem = $"{frames.Count - delimiter - 1} frames after the delimiter, expected at least 5"; return false; }

        var parts = frames.Skip(delimiter + 2).Take(4).ToArray();
        if (!signer.Verify(frames[delimiter + 1], parts)) { problem = "bad signature"; return false; }

        try
        {
            var dictionaries = parts.Select(p => JsonNode.Parse(p) as JsonObject ?? throw new JsonException("not a JSON object")).ToArray();
            message = new JupyterMessage(frames.Take(delimiter).ToArray(), dictionaries[0], dictionaries[1], dictionaries[2], dictionaries[3],
                frames.Skip(delimiter + 6).ToArray());
            problem = null;
            return true;
        }
        catch (JsonException e)
        {
            problem = $"malformed JSON: {e.Message}";
            return false;
        }
    }
}
