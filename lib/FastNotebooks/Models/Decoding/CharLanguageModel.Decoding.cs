using FastNotebooks.Models.Decoding;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Models;

// Generation: prefill the prompt with the layers' own kernels while each layer keeps its decoding cache (the recurrent
// Fastmax state or a softmax KV cache), then one token at a time through the caches. Every logit equals the full causal
// forward's at that position up to rounding (tests/…/Models/Decoding).
public sealed partial class CharLanguageModel
{
    /// <summary>True when every block's attention has a decoding cache (causal Fastmax or softmax).</summary>
    public bool SupportsDecodingState => blocks.All(b => AttentionCache.Supports(b.attention.Mechanism));

    /// <summary>
    /// Runs the prompt ids [B, N] (int64, 1 ≤ N ≤ MaxTokens) and returns its logits [B, N, vocabulary] (the same as
    /// <see cref="forward"/>), with the state that continues it in <paramref name="state"/>. No gradients; evaluation mode
    /// (a model in training mode with dropout is refused).
    /// </summary>
    public Tensor Prefill(Tensor ids, out DecodingState state)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (ids.dtype != ScalarType.Int64 || ids.dim() != 2)
            throw new ArgumentException($"ids must be int64 [B, N]; got {ids.dtype} [{string.Join(", ", ids.Shape())}].", nameof(ids));
        if (ids.size(1) < 1 || ids.size(1) > Config.MaxTokens)
            throw new ArgumentException($"a prompt of {ids.size(1)} tokens does not fit: it must hold 1 to MaxTokens = {Config.MaxTokens} tokens.", nameof(ids));
        RequireDecodable();
        var caches = new IAttentionCache[blocks.Count];
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = Embed(ids);
        for (int i = 0; i < blocks.Count; i++)
        {
            var layer = blocks[i].attention;
            int index = i;
            x = blocks[i].Forward(x, h => layer.Forward(h, (q, k, v) =>
            {
                caches[index] = AttentionCache.Prefill(layer.Mechanism, q, k, v, Config.MaxTokens);
                return layer.Mechanism.forward(q, k, v);                                  // the prompt through the layer's own kernel
            }));
        }
        state = new DecodingState(this, positions.dtype, ids.size(0), caches, ids.size(1));
        return TiledLinear.Apply(head, norm.forward(x)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Feeds the next token of each sequence, tokens [B] (int64), and returns its logits [B, vocabulary]; advances
    /// <paramref name="state"/> by one position.
    /// </summary>
    public Tensor Step(DecodingState state, Tensor tokens)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(tokens);
        if (!ReferenceEquals(state.Model, this))
            throw new ArgumentException("state was made by another model; a decoding state continues only the model that prefilled it.", nameof(state));
        if (state.DType != positions.dtype)
            throw new ArgumentException($"state holds {state.DType} but the model now computes in {positions.dtype}; prefill again after changing the dtype.", nameof(state));
        if (tokens.dtype != ScalarType.Int64 || tokens.dim() != 1 || tokens.size(0) != state.Batch)
            throw new ArgumentException($"tokens must be int64 [{state.Batch}] (one per sequence); got {tokens.dtype} [{string.Join(", ", tokens.Shape())}].", nameof(tokens));
        if (state.Position >= Config.MaxTokens)
            throw new ArgumentException($"state is at position {state.Position}: the model has learned positions for MaxTokens = {Config.MaxTokens} tokens only.", nameof(state));
        RequireDecodable();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = this.tokens.forward(tokens.unsqueeze(1)) + positions.narrow(1, state.Position, 1); // [B, 1, d]
        for (int i = 0; i < blocks.Count; i++)
        {
            var layer = blocks[i].attention;
            var cache = state.Layers[i];
            x = blocks[i].Forward(x, h => layer.Forward(h, cache.Step));
        }
        state.Position++;
        return TiledLinear.Apply(head, norm.forward(x)).squeeze(1).MoveToOuterDisposeScope();          // [B, vocabulary]
    }

    /// <summary>Continues <paramref name="prompt"/> by <paramref name="count"/> sampled tokens (temperature-scaled softmax).</summary>
    public long[] Sample(long[] prompt, int count, double temperature = 1.0, long seed = 0)
    {
        if (!(temperature > 0) || !double.IsFinite(temperature))
            throw new ArgumentException($"temperature must be positive and finite; got {temperature}.", nameof(temperature));
        var generator = new Generator((ulong)seed);
        return Generate(prompt, count, logits => multinomial((logits / temperature).softmax(-1), 1, generator: generator).item<long>());
    }

    /// <summary>Continues <paramref name="prompt"/> by <paramref name="count"/> tokens, each the most likely one.</summary>
    public long[] Greedy(long[] prompt, int count) => Generate(prompt, count, logits => logits.argmax(-1).item<long>());

    /// <summary>
    /// The generation loop. While the sequence fits the learned positions it runs on the decoding state; past MaxTokens (or
    /// for mechanisms without a cache) each token re-runs the model on the last MaxTokens tokens, as a sliding window.
    /// </summary>
    long[] Generate(long[] prompt, int count, Func<Tensor, long> choose)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Length == 0) throw new ArgumentException("prompt must hold at least one token.", nameof(prompt));
        if (count < 0) throw new ArgumentException($"count must be non-negative; got {count}.", nameof(count));
        var sequence = prompt.ToList();
        using var noGrad = no_grad();
        DecodingState? state = null;
        try
        {
            Tensor? logits = null;                                                             // [vocabulary] for the next token
            if (SupportsDecodingState && prompt.Length <= Config.MaxTokens && (!training || !HasDropout))
            {
                using var all = Prefill(tensor(prompt).unsqueeze(0), out var prefilled);
                state = prefilled;
                logits = all[0, -1].detach().DetachFromDisposeScope();
            }
            for (int i = 0; i < count; i++)
            {
                using var scope = NewDisposeScope();
                logits ??= Window(sequence);
                long next = choose(logits);
                logits.Dispose();
                logits = null;
                sequence.Add(next);
                if (state is not null && sequence.Count <= Config.MaxTokens && i + 1 < count)
                    logits = Step(state, tensor(new[] { next }))[0].DetachFromDisposeScope();
            }
            logits?.Dispose();
        }
        finally { state?.Dispose(); }
        return sequence.Skip(prompt.Length).ToArray();
    }

    /// <summary>Logits [vocabulary] after the last MaxTokens tokens of the sequence, by a full forward.</summary>
    Tensor Window(List<long> sequence)
    {
        var window = sequence.Skip(Math.Max(0, sequence.Count - Config.MaxTokens)).ToArray();
        return forward(tensor(window).unsqueeze(0))[0, -1].detach().DetachFromDisposeScope();
    }

    bool HasDropout => Config.Dropout > 0 || Config.AttentionDropout > 0;

    void RequireDecodable()
    {
        if (training && HasDropout)
            throw new InvalidOperationException($"the model is in training mode with dropout ({Config.Dropout}, attention {Config.AttentionDropout}); decoding computes the evaluation-mode model: call eval() first.");
        var unsupported = blocks.Select(b => b.attention.Mechanism).FirstOrDefault(m => !AttentionCache.Supports(m));
        if (unsupported is not null)
            throw new NotSupportedException($"attention '{Config.Attention}' ({unsupported.GetName()}) has no decoding cache; decoding with state needs causal fastmax or softmax attention.");
    }
}
