using System.Text;
using System.Text.Json.Nodes;
using FastNotebooks.Notebooks.Kernel;

namespace FastNotebooks.Notebooks.Tests.Kernel;

public class WireTests
{
    static readonly MessageSigner Signer = new("secret");

    static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    static List<byte[]> Frames(string? signature = null, string content = "{}")
    {
        var parts = new[] { "{\"msg_type\":\"kernel_info_request\"}", "{}", "{}", content }.Select(Utf8).ToArray();
        var frames = new List<byte[]> { Utf8("client-identity"), Wire.Delimiter, Utf8(signature ?? Signer.Sign(parts)) };
        frames.AddRange(parts);
        return frames;
    }

    [Fact]
    public void Signature_is_the_hex_hmac_sha256_of_the_four_dictionaries()
    {
        // Python: hmac.new(b"secret", header + parent + metadata + content, hashlib.sha256).hexdigest()
        var parts = new[] { "{\"msg_type\":\"kernel_info_request\"}", "{}", "{}", "{}" }.Select(Utf8);
        Assert.Equal("da987989801f25e9398e6a2aee42649d93bf7451e56a863c9f755263d32e6ef1", Signer.Sign(parts));
    }

    [Fact]
    public void Signed_message_decodes_with_its_identity()
    {
        Assert.True(Wire.TryDecode(Frames(), Signer, out var message, out var problem), problem);
        Assert.Equal("kernel_info_request", message!.MsgType);
        Assert.Equal("client-identity", Encoding.UTF8.GetString(Assert.Single(message.Identities)));
    }

    [Fact]
    public void Bad_signature_is_rejected()
    {
        var forged = new MessageSigner("another key").Sign(Frames().Skip(3).Take(4));
        Assert.False(Wire.TryDecode(Frames(forged), Signer, out var message, out var problem));
        Assert.Null(message);
        Assert.Equal("bad signature", problem);
    }

    [Fact]
    public void Changed_content_under_a_valid_signature_is_rejected()
    {
        var frames = Frames();
        frames[^1] = Utf8("{\"code\":\"evil()\"}");
        Assert.False(Wire.TryDecode(frames, Signer, out _, out var problem));
        Assert.Equal("bad signature", problem);
    }

    [Fact]
    public void Missing_signature_is_rejected_when_a_key_is_set()
    {
        Assert.False(Wire.TryDecode(Frames(signature: ""), Signer, out _, out var problem));
        Assert.Equal("bad signature", problem);
    }

    [Fact]
    public void Without_a_key_messages_are_neither_signed_nor_checked()
    {
        var unsigned = new MessageSigner("");
        Assert.Equal("", unsigned.Sign(new[] { Utf8("{}") }));
        Assert.True(Wire.TryDecode(Frames(signature: ""), unsigned, out _, out var problem), problem);
    }

    [Fact]
    public void Frames_without_delimiter_or_with_too_few_parts_are_rejected()
    {
        var noDelimiter = Frames();
        noDelimiter.RemoveAt(1);
        Assert.False(Wire.TryDecode(noDelimiter, Signer, out _, out var problem));
        Assert.Contains("delimiter", problem);

        var truncated = Frames().Take(5).ToList();
        Assert.False(Wire.TryDecode(truncated, Signer, out _, out problem));
        Assert.Contains("frames", problem);
    }

    [Fact]
    public void Encoded_reply_round_trips_with_parent_header_and_identities()
    {
        Assert.True(Wire.TryDecode(Frames(), Signer, out var request, out _));
        var reply = JupyterMessage.Create("kernel_info_reply", new JsonObject { ["status"] = "ok", ["html"] = "<b>é</b>" }, "session-1", request, request!.Identities);

        var frames = Wire.Encode(reply, Signer);

        Assert.True(Wire.TryDecode(frames, Signer, out var decoded, out var problem), problem);
        Assert.Equal("client-identity", Encoding.UTF8.GetString(Assert.Single(decoded!.Identities)));
        Assert.Equal("kernel_info_reply", decoded.MsgType);
        Assert.Equal("kernel_info_request", decoded.ParentHeader["msg_type"]!.GetValue<string>());
        Assert.Equal("5.3", decoded.Header["version"]!.GetValue<string>());
        Assert.Equal("<b>é</b>", decoded.Content["html"]!.GetValue<string>());
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", decoded.Header["date"]!.GetValue<string>());
    }
}
