using System.Diagnostics;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Softmax;
using FastNotebooks.Models;
using FastNotebooks.Models.Decoding;
using static TorchSharp.torch;

namespace FastNotebooks.Bench;

/// <summary>
/// Time per generated token at one context length: the fastest and the median of the timed steps, and the bytes a sequence
/// keeps between tokens. Scope is "layer" (one attention layer, q, k, v given) or "char-lm" (the whole model, one token in,
/// logits out). Method: "fastmax{p}-state" (<see cref="FastmaxRecurrentState"/>), "softmax-kv-cache" (<see cref="SoftmaxKvCache"/>),
/// or "softmax-window" (the causal forward over the whole window again for every token, as sampling did before the caches).
/// </summary>
public sealed record GenerationRow(string Scope, string Method, int Context, double TokenMs, double TokenMedianMs, long StateBytesPerSequence)
{
    public double TokensPerSecond => 1000 / TokenMs;
}

/// <summary>Measures generation speed: per-token time and state size against context length, for the decoding caches and the window recompute.</summary>
public static class GenerationSpeed
{
    /// <summary>
    /// One causal attention layer with <paramref name="heads"/> heads of size <paramref name="d"/> (B = 1): at each context t,
    /// the state after t − 1 random tokens, then <paramref name="warmup"/> untimed and <paramref name="repeats"/> timed steps.
    /// The Fastmax state and the softmax KV cache of every context are prepared first and their steps then alternate, context
    /// after context, so that the per-token times compared across contexts meet the same load (on a shared machine a context
    /// timed alone could meet a busier moment than the next). The window recompute runs afterwards, context by context, up to
    /// <paramref name="windowMaxContext"/> (it is O(t²) per token).
    /// </summary>
    public static List<GenerationRow> Layer(IReadOnlyList<int> contexts, int heads = 8, int d = 32, int order = 2, int repeats = 15, int warmup = 3,
        int windowMaxContext = 8192, Action<string>? log = null)
    {
        var options = new FastmaxOptions { Order = order, Causal = true };
        int steps = warmup + repeats;
        using var scope = NewDisposeScope();
        var prepared = new List<(int Context, Tensor Q, Tensor K, Tensor V, FastmaxRecurrentState State, SoftmaxKvCache Cache)>();
        try
        {
            foreach (int context in contexts)
            {
                log?.Invoke($"generation, one layer: context {context}");
                var generator = new Generator((ulong)context);
                Tensor Draw(long n) => randn(new long[] { 1, heads, n, d }, generator: generator);
                var (q, k, v) = (Draw(context + steps), Draw(context + steps), Draw(context + steps));
                long prompt = context - 1;
                using var noGrad = no_grad();
                prepared.Add((context, q, k, v,
                    FastmaxRecurrentState.Prefill(q.narrow(2, 0, prompt), k.narrow(2, 0, prompt), v.narrow(2, 0, prompt), options),
                    SoftmaxKvCache.Prefill(k.narrow(2, 0, prompt), v.narrow(2, 0, prompt), context + steps)));
            }
            var fastmax = prepared.Select(_ => new double[repeats]).ToArray();
            var kv = prepared.Select(_ => new double[repeats]).ToArray();
            using (no_grad())
                for (int i = 0; i < steps; i++)
                    for (int c = 0; c < prepared.Count; c++)
                    {
                        var (context, q, k, v, state, cache) = prepared[c];
                        long t = context - 1 + i;
                        Tensor Token(Tensor x) => x.narrow(2, t, 1);
                        double fast = Step(() => state.Step(Token(q), Token(k), Token(v)));
                        double cached = Step(() => cache.Step(Token(q), Token(k), Token(v)));
                        if (i >= warmup) (fastmax[c][i - warmup], kv[c][i - warmup]) = (fast, cached);
                    }

            var rows = new List<GenerationRow>();
            for (int c = 0; c < prepared.Count; c++)
            {
                var (context, q, k, v, state, cache) = prepared[c];
                rows.Add(new GenerationRow("layer", $"fastmax{order}-state", context, fastmax[c].Min(), Timing.Median(fastmax[c]), state.Bytes));
                rows.Add(new GenerationRow("layer", "softmax-kv-cache", context, kv[c].Min(), Timing.Median(kv[c]), cache.Bytes));
                if (context <= windowMaxContext)
                {
                    log?.Invoke($"generation, one layer, window recompute: context {context}");
                    int few = Math.Max(1, Math.Min(repeats, 3));
                    using var noGrad = no_grad();
                    var row = Time("layer", "softmax-window", context, null, t =>
                        SoftmaxAttention.Attention(q.narrow(2, 0, t + 1), k.narrow(2, 0, t + 1), v.narrow(2, 0, t + 1), causal: true), context - 1, 1, few);
                    rows.Add(row with { StateBytesPerSequence = 2L * heads * context * d * sizeof(float) });   // the window's keys and values
                }
            }
            return rows;
        }
        finally
        {
            foreach (var p in prepared) { p.State.Dispose(); p.Cache.Dispose(); }
        }
    }

    /// <summary>One step's time in ms; what it makes is disposed with the step.</summary>
    static double Step(Action step)
    {
        using var stepScope = NewDisposeScope();
        var clock = Stopwatch.StartNew();
        step();
        return clock.Elapsed.TotalMilliseconds;
    }

    /// <summary>
    /// The character LM with <paramref name="config"/> (random weights; its MaxTokens must cover the contexts plus the steps) for
    /// each attention in <paramref name="attentions"/>: at each context the state after a prompt of context − 1 tokens, then timed
    /// steps; and the window recompute (one forward over the whole window per token) up to <paramref name="windowMaxContext"/>.
    /// </summary>
    public static List<GenerationRow> CharLm(TransformerConfig config, int vocabulary, IReadOnlyList<int> contexts, IReadOnlyList<string> attentions,
        int repeats = 10, int warmup = 2, int windowMaxContext = 2048, Action<string>? log = null)
    {
        var rows = new List<GenerationRow>();
        foreach (var attention in attentions)
        {
            manual_seed(0);
            using var model = new CharLanguageModel(config with { Attention = attention }, vocabulary);
            model.eval();
            string method = attention.StartsWith("fastmax") ? attention + "-state" : attention + "-kv-cache";
            foreach (int context in contexts)
            {
                if (context + warmup + repeats > config.MaxTokens)
                    throw new ArgumentException($"context {context} plus {warmup + repeats} steps exceeds MaxTokens {config.MaxTokens}.", nameof(contexts));
                log?.Invoke($"generation, char-LM {attention}: context {context}");
                using var scope = NewDisposeScope();
                var ids = randint(0, vocabulary, new long[] { 1, context + warmup + repeats }, generator: new Generator((ulong)context));
                model.Prefill(ids.narrow(1, 0, context - 1), out var state);
                using (state)
                {
                    var row = Time("char-lm", method, context, null, t => model.Step(state, ids.select(1, t)), context - 1, warmup, repeats);
                    rows.Add(row with { StateBytesPerSequence = state.BytesPerSequence });
                }
                if (attention.StartsWith("softmax") && context <= windowMaxContext)
                {
                    using var noGrad = no_grad();
                    var row = Time("char-lm", attention + "-window", context, null, t => model.forward(ids.narrow(1, 0, t + 1)), context - 1, 1, Math.Min(repeats, 3));
                    rows.Add(row with { StateBytesPerSequence = context * sizeof(long) });                 // the window's token ids
                }
            }
        }
        return rows;
    }

    /// <summary>Times step(t) for t = first + warmup … first + warmup + repeats − 1 (one token each, the context growing by one).</summary>
    static GenerationRow Time(string scope, string method, int context, IAttentionCache? cache, Func<long, Tensor> step, long first, int warmup, int repeats)
    {
        var samples = new double[repeats];
        for (int i = 0; i < warmup + repeats; i++)
        {
            using var stepScope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            step(first + i);
            if (i >= warmup) samples[i - warmup] = clock.Elapsed.TotalMilliseconds;
        }
        return new GenerationRow(scope, method, context, samples.Min(), Timing.Median(samples), cache?.Bytes ?? 0);
    }

    /// <summary>
    /// The smallest measured context from which on the first method is faster per token than the second at every larger
    /// measured context (fastest times); +∞ when it is not faster at the largest.
    /// </summary>
    public static double FasterFrom(IReadOnlyList<GenerationRow> rows, string scope, string faster, string slower)
    {
        var pairs = rows.Where(r => r.Scope == scope && r.Method == faster)
            .Join(rows.Where(r => r.Scope == scope && r.Method == slower), a => a.Context, b => b.Context, (a, b) => (a.Context, Wins: a.TokenMs < b.TokenMs))
            .OrderBy(p => p.Context).ToList();
        double from = double.PositiveInfinity;
        for (int i = pairs.Count - 1; i >= 0 && pairs[i].Wins; i--) from = pairs[i].Context;
        return from;
    }

    /// <summary>Per-token time of <paramref name="method"/> at the longest measured context over its time at the shortest.</summary>
    public static (int Short, int Long, double Ratio) Flatness(IReadOnlyList<GenerationRow> rows, string scope, string method)
    {
        var own = rows.Where(r => r.Scope == scope && r.Method == method).OrderBy(r => r.Context).ToList();
        return (own[0].Context, own[^1].Context, own[^1].TokenMs / own[0].TokenMs);
    }
}
