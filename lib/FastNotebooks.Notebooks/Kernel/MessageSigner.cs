using System.Security.Cryptography;
using System.Text;

namespace FastNotebooks.Notebooks.Kernel;

/// <summary>
/// Signs and checks Jupyter messages: the hex HMAC-SHA256, under the connection file's key, of the header,
/// parent header, metadata and content frames in that order. With an empty key nothing is signed, as the
/// protocol allows.
/// </summary>
public sealed class MessageSigner
{
    /// <summary>The one scheme supported, as named in connection files.</summary>
    public const string Scheme = "hmac-sha256";

    readonly byte[] _key;

    /// <summary>Creates a signer; throws <see cref="NotSupportedException"/> for a scheme other than hmac-sha256.</summary>
    /// <param name="key">The connection file's key (its UTF-8 bytes are the HMAC key).</param>
    /// <param name="scheme">The connection file's signature_scheme.</param>
    public MessageSigner(string key, string scheme = Scheme)
    {
        if (key.Length > 0 && scheme != Scheme) throw new NotSupportedException($"signature scheme '{scheme}' is not supported (only {Scheme})");
        _key = Encoding.UTF8.GetBytes(key);
    }

    /// <summary>True when messages carry signatures (the key is not empty).</summary>
    public bool Signs => _key.Length > 0;

    /// <summary>The lowercase hex signature of <paramref name="parts"/> (header, parent header, metadata, content); "" without a key.</summary>
    public string Sign(IEnumerable<byte[]> parts)
    {
        if (!Signs) return "";
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _key);
        foreach (var part in parts) hmac.AppendData(part);
        return Convert.ToHexStringLower(hmac.GetHashAndReset());
    }

    /// <summary>
    /// True when <paramref name="signature"/> is the signature of <paramref name="parts"/>. The comparison
    /// takes the same time wherever the first differing byte is, so timing does not reveal the signature.
    /// </summary>
    public bool Verify(byte[] signature, IEnumerable<byte[]> parts)
    {
        if (!Signs) return true;
        var expected = Encoding.ASCII.GetBytes(Sign(parts));
        return CryptographicOperations.FixedTimeEquals(expected, signature);
    }
}
