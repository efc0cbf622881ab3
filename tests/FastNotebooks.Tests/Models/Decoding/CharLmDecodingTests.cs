using FastNotebooks.Models;
using FastNotebooks.Models.Decoding;
using FastNotebooks.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Models.Decoding;

/// <summary>
/// Prefill + steps of the character LM against its full causal forward, at every position: random models (odd widths), prompt
/// lengths, every Fastmax normalization, p = 1, 2, 3, and softmax with its KV cache.
/// </summary>
public class CharLmDecodingTests
{
    const int Vocabulary = 11;

    public static TheoryData<string, string, int, int> Cases()
    {
        var data = new TheoryData<string, string, int, int>();
        var attentions = new[]
        {
            "fastmax2", "fastmax2-zero-centered", "fastmax2-none", "fastmax2-squared-norm", "fastmax1", "fastmax1-zero-centered",
            "fastmax1-none", "fastmax1-squared-norm", "fastmax3", "fastmax2-dense", "softmax", "softmax-dense",
        };
        foreach (var dtype in new[] { "float64", "float32" })
            foreach (var attention in attentions)
                foreach (var (prompt, total) in new[] { (1, 7), (6, 19) })
                    data.Add(attention, dtype, prompt, total);
        // Past the N×N form's threshold (Nk > 64): the prompt runs the chunked kernel (two chunks) and the scan of p = 1.
        foreach (var attention in new[] { "fastmax2", "fastmax1", "fastmax2-squared-norm", "softmax" })
            data.Add(attention, "float64", 97, 131);
        data.Add("fastmax2", "float32", 97, 131);
        return data;
    }

    static CharLanguageModel Model(string attention, int maxTokens, ScalarType dtype, int seed)
    {
        manual_seed(seed);
        var model = new CharLanguageModel(new TransformerConfig(15, 3, 2, 17, attention, 0, maxTokens), Vocabulary);
        model.to(dtype);
        model.eval();
        return model;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Incremental_logits_equal_the_full_causal_forward(string attention, string dtype, int prompt, int total)
    {
        var type = dtype == "float64" ? ScalarType.Float64 : ScalarType.Float32;
        double tolerance = type == ScalarType.Float64 ? 1e-10 : 1e-4;
        using var model = Model(attention, total, type, seed: prompt + total);
        using var scope = NewDisposeScope();
        var ids = randint(0, Vocabulary, new long[] { 2, total }, generator: new Generator((ulong)total));
        var full = model.forward(ids);                                                          // [2, total, V]

        var prefill = model.Prefill(ids.narrow(1, 0, prompt), out var state);
        using (state)
        {
            ErrorReport.Of($"{attention} {dtype}: prefill logits", prefill, full.narrow(1, 0, prompt)).Require(tolerance);
            for (int t = prompt; t < total; t++)
            {
                var logits = model.Step(state, ids.select(1, t));
                ErrorReport.Of($"{attention} {dtype}: logits at t={t} (prompt {prompt})", logits, full.select(1, t)).Require(tolerance);
            }
            Assert.Equal(total, state.Position);
        }
    }

    [Fact]
    public void Fastmax_state_stays_constant_while_the_kv_cache_grows()
    {
        using var fastmax = Model("fastmax2", 40, ScalarType.Float32, seed: 1);
        using var softmax = Model("softmax", 40, ScalarType.Float32, seed: 1);
        long[] Bytes(CharLanguageModel model)
        {
            using var scope = NewDisposeScope();
            model.Prefill(zeros(new long[] { 1, 3 }, dtype: ScalarType.Int64), out var state);
            using (state)
            {
                long before = state.BytesPerSequence;
                for (int i = 0; i < 10; i++) model.Step(state, zeros(new long[] { 1 }, dtype: ScalarType.Int64));
                return new[] { before, state.BytesPerSequence };
            }
        }
        var f = Bytes(fastmax);
        Assert.Equal(f[0], f[1]);
        Assert.Equal(2 * (3 * 21 * 6 + 2 * 3) * 4, f[0]);                                     // 2 blocks, 3 heads, F = 21 at D = 5, Dv + 1 = 6, two scales; float32
        var s = Bytes(softmax);
        Assert.Equal(2 * 3 * 13 * (5 + 5) * 4, s[1]);                                         // 2 blocks, 3 heads, 13 tokens of k and v
    }

    [Fact]
    public void Greedy_decoding_on_state_picks_the_argmax_of_the_full_forward()
    {
        using var model = Model("fastmax2", 30, ScalarType.Float64, seed: 4);
        var prompt = new long[] { 3, 1, 4 };
        var generated = model.Greedy(prompt, 20);
        var sequence = prompt.Concat(generated).ToArray();
        using var logits = model.forward(tensor(sequence).unsqueeze(0));
        for (int i = 0; i < generated.Length; i++)
            Assert.Equal(logits[0, prompt.Length - 1 + i].argmax().item<long>(), generated[i]);
    }

    [Fact]
    public void Sampling_past_max_tokens_continues_on_a_sliding_window()
    {
        using var model = Model("fastmax2", 8, ScalarType.Float64, seed: 5);
        var stateful = model.Sample(new long[] { 1, 2 }, 15, 0.9, seed: 7);
        // The same draws through the window path only: a model whose prompt alone already fills the window takes no state.
        Assert.Equal(15, stateful.Length);
        Assert.All(stateful, t => Assert.InRange(t, 0, Vocabulary - 1));
        var generator = new Generator(7);
        var sequence = new List<long> { 1, 2 };
        for (int i = 0; i < 15; i++)
        {
            var window = sequence.Skip(Math.Max(0, sequence.Count - 8)).ToArray();
            using var logits = model.forward(tensor(window).unsqueeze(0))[0, -1];
            sequence.Add(multinomial((logits / 0.9).softmax(-1), 1, generator: generator).item<long>());
        }
        Assert.Equal(sequence.Skip(2).ToArray(), stateful);
    }

    [Fact]
    public void Bad_use_is_refused_naming_the_argument_and_value()
    {
        using var model = Model("fastmax2", 6, ScalarType.Float32, seed: 6);
        using var other = Model("fastmax2", 6, ScalarType.Float32, seed: 6);
        using var scope = NewDisposeScope();
        var tooLong = Assert.Throws<ArgumentException>(() => model.Prefill(zeros(new long[] { 1, 7 }, dtype: ScalarType.Int64), out _));
        Assert.Equal("ids", tooLong.ParamName);
        Assert.Contains("7 tokens", tooLong.Message);
        var floats = Assert.Throws<ArgumentException>(() => model.Prefill(zeros(1, 3), out _));
        Assert.Contains("Float32", floats.Message);

        model.Prefill(zeros(new long[] { 1, 5 }, dtype: ScalarType.Int64), out var state);
        using (state)
        {
            var foreign = Assert.Throws<ArgumentException>(() => other.Step(state, zeros(new long[] { 1 }, dtype: ScalarType.Int64)));
            Assert.Equal("state", foreign.ParamName);
            var wrongTokens = Assert.Throws<ArgumentException>(() => model.Step(state, zeros(new long[] { 2 }, dtype: ScalarType.Int64)));
            Assert.Equal("tokens", wrongTokens.ParamName);
            model.Step(state, zeros(new long[] { 1 }, dtype: ScalarType.Int64));                 // position 5: the last one
            var full = Assert.Throws<ArgumentException>(() => model.Step(state, zeros(new long[] { 1 }, dtype: ScalarType.Int64)));
            Assert.Contains("position 6", full.Message);
            model.to(ScalarType.Float64);
            var dtype = Assert.Throws<ArgumentException>(() => model.Step(state, zeros(new long[] { 1 }, dtype: ScalarType.Int64)));
            Assert.Contains("Float32", dtype.Message);
        }
        using var linear = Model("linear", 6, ScalarType.Float32, seed: 6);
        Assert.Throws<NotSupportedException>(() => linear.Prefill(zeros(new long[] { 1, 2 }, dtype: ScalarType.Int64), out _));
        Assert.Equal(4, linear.Sample(new long[] { 1 }, 4).Length);                           // sampling falls back to the window
    }
}
