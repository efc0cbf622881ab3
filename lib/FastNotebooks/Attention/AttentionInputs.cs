using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Attention;

/// <summary>
/// Shape and type checks shared by every attention mechanism. Inputs are
/// q [B, H, Nq, D], k [B, H, Nk, D], v [B, H, Nk, Dv]; every failure names the argument and what it got.
/// </summary>
public static class AttentionInputs
{
    public static void Validate(Tensor q, Tensor k, Tensor v, bool causal)
    {
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(k);
        ArgumentNullException.ThrowIfNull(v);
        RequireRank4(q, nameof(q));
        RequireRank4(k, nameof(k));
        RequireRank4(v, nameof(v));

        if (k.dtype != q.dtype || v.dtype != q.dtype)
            throw new ArgumentException($"q, k and v must share one dtype; got q {q.dtype}, k {k.dtype}, v {v.dtype}.", nameof(k));
        if (!is_floating_point(q))
            throw new ArgumentException($"attention needs floating-point inputs; got q {q.dtype}.", nameof(q));
        if (!SameDevice(k, q) || !SameDevice(v, q))
            throw new ArgumentException($"q, k and v must be on one device; got q {q.device}, k {k.device}, v {v.device}.", nameof(k));

        if (k.size(0) != q.size(0) || k.size(1) != q.size(1) || v.size(0) != q.size(0) || v.size(1) != q.size(1))
            throw new ArgumentException($"q, k and v must share batch and head sizes [B, H]; got q {Shape(q)}, k {Shape(k)}, v {Shape(v)}.", nameof(k));
        if (k.size(3) != q.size(3))
            throw new ArgumentException($"k's feature size D must equal q's; got q {Shape(q)}, k {Shape(k)}.", nameof(k));
        if (v.size(2) != k.size(2))
            throw new ArgumentException($"v must have one row per key (Nk); got k {Shape(k)}, v {Shape(v)}.", nameof(v));
        if (q.size(2) == 0 || k.size(2) == 0 || q.size(3) == 0 || v.size(3) == 0)
            throw new ArgumentException($"attention needs at least one query, key and feature; got q {Shape(q)}, k {Shape(k)}, v {Shape(v)}.", nameof(q));
        if (causal && k.size(2) < q.size(2))
            throw new ArgumentException(
                $"causal attention needs at least as many keys as queries (query i sees keys j <= Nk - Nq + i); got Nq = {q.size(2)}, Nk = {k.size(2)}.", nameof(k));
    }

    static bool SameDevice(Tensor a, Tensor b) => a.device_type == b.device_type && a.device_index == b.device_index;

    static void RequireRank4(Tensor t, string name)
    {
        if (t.dim() != 4)
            throw new ArgumentException($"{name} must have shape [B, H, N, D] (rank 4); got rank {t.dim()} with shape {Shape(t)}.", name);
    }

    /// <summary>A shape as "[2, 4, 16, 8]", for messages.</summary>
    public static string Shape(Tensor t) => "[" + string.Join(", ", t.Shape()) + "]";
}
