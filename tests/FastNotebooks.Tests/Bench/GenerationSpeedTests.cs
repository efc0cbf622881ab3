using FastNotebooks.Bench;

namespace FastNotebooks.Tests.Bench;

/// <summary>The generation section's rows (what is measured and reported, never how fast).</summary>
public class GenerationSpeedTests
{
    /// <summary>
    /// Two small contexts, their steps alternating: per context the Fastmax state, the KV cache and (up to the window limit) the
    /// window recompute, in that order; the Fastmax state's bytes the same at every context, the KV cache's growing with it, the
    /// window's its keys and values; every time a real one.
    /// </summary>
    [Fact]
    public void One_layer_rows_per_context_in_order_with_their_state_sizes()
    {
        var rows = GenerationSpeed.Layer(new[] { 8, 24 }, heads: 2, d: 4, repeats: 2, warmup: 1, windowMaxContext: 8);
        Assert.Equal(new[] { ("fastmax2-state", 8), ("softmax-kv-cache", 8), ("softmax-window", 8), ("fastmax2-state", 24), ("softmax-kv-cache", 24) },
            rows.Select(r => (r.Method, r.Context)).ToArray());
        Assert.All(rows, r => Assert.True(r.TokenMs > 0 && r.TokenMedianMs >= r.TokenMs, $"{r.Method} at {r.Context}: {r.TokenMs} / {r.TokenMedianMs} ms"));
        var state = rows.Where(r => r.Method == "fastmax2-state").Select(r => r.StateBytesPerSequence).ToArray();
        Assert.True(state[0] > 0 && state[0] == state[1], $"Fastmax state bytes {state[0]} and {state[1]}");
        var cache = rows.Where(r => r.Method == "softmax-kv-cache").Select(r => r.StateBytesPerSequence).ToArray();
        Assert.True(cache[1] > cache[0], $"KV cache bytes {cache[0]} at 8 and {cache[1]} at 24");
        Assert.Equal(2L * 2 * 8 * 4 * sizeof(float), rows.Single(r => r.Method == "softmax-window").StateBytesPerSequence);
    }
}
