using FastNotebooks.Bench;
using FastNotebooks.Models;
using FastNotebooks.Training;
using FastNotebooks.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Experiments;

/// <summary>
/// Notebook 10: generation on the recurrent Fastmax state (Models/Decoding) against softmax with a KV cache and softmax
/// recomputing the window; exactness of the incremental logits, time per token and state bytes against the context.
/// </summary>
public static class GenerationExperiment
{
    /// <summary>Contexts of the one-layer timing (B = 1, 8 heads of 32), of the char-LM timing, and the timed steps per context.</summary>
    public sealed record Settings(int[] LayerContexts, int LayerWindowMax, int[] CharLmContexts, int CharLmWindowMax, int Repeats);

    public static Settings For(Profile profile) => profile.Pick(
        smoke: new Settings(new[] { 256, 1024 }, 1024, new[] { 64, 128 }, 128, 5),
        quick: new Settings(new[] { 1024, 2048, 4096, 16384, 65536 }, 4096, new[] { 256, 1024, 2048 }, 1024, 15),
        full: new Settings(new[] { 1024, 2048, 4096, 8192, 16384, 32768, 65536 }, 16384, new[] { 128, 256, 512, 1024, 2048 }, 2048, 25));

    /// <summary>
    /// The largest relative error (max-abs over max-abs, <see cref="ErrorReport"/>) between the logits of prefill + steps and
    /// the full causal forward over positions 0..<paramref name="total"/> − 1, for a random float64 model with this attention.
    /// </summary>
    public static double IncrementalError(string attention, int prompt, int total, int seed = 0)
    {
        manual_seed(seed);
        using var model = new CharLanguageModel(new TransformerConfig(15, 3, 2, 17, attention, 0, total), 11);
        model.to(ScalarType.Float64);
        model.eval();
        using var scope = NewDisposeScope();
        var ids = randint(0, 11, new long[] { 2, total }, generator: new Generator((ulong)seed + 1));
        var full = model.forward(ids);
        double worst = ErrorReport.Of("prefill", model.Prefill(ids.narrow(1, 0, prompt), out var state), full.narrow(1, 0, prompt)).RelativeError;
        using (state)
            for (int t = prompt; t < total; t++)
                worst = Math.Max(worst, ErrorReport.Of($"t={t}", model.Step(state, ids.select(1, t)), full.select(1, t)).RelativeError);
        return worst;
    }

    /// <summary>Rows of one method, ordered by context: (context, ms per token).</summary>
    public static (double[] Contexts, double[] Milliseconds) Series(IEnumerable<GenerationRow> rows, string scope, string method)
    {
        var own = rows.Where(r => r.Scope == scope && r.Method == method).OrderBy(r => r.Context).ToList();
        return (own.Select(r => (double)r.Context).ToArray(), own.Select(r => r.TokenMs).ToArray());
    }
}
