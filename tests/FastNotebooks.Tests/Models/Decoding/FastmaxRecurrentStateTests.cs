using FastNotebooks.Attention.Fastmax.Reference;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Models.Decoding;
using FastNotebooks.Verification;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Models.Decoding;

/// <summary>The recurrent Fastmax state, one layer: prefill then steps against the dense causal reference over the whole sequence.</summary>
public class FastmaxRecurrentStateTests
{
    public static TheoryData<int, FastmaxNormalization, int, int, bool> Cases()
    {
        var data = new TheoryData<int, FastmaxNormalization, int, int, bool>();
        foreach (int order in new[] { 1, 2, 3 })
            foreach (var normalization in Enum.GetValues<FastmaxNormalization>())
                foreach (var (prompt, total) in new[] { (1, 9), (5, 13), (11, 12) })
                    data.Add(order, normalization, prompt, total, order == 2 && prompt == 5);
        return data;
    }

    /// <summary>
    /// Token norms grow along the sequence (scale 1 + t/3), so the running maxima of q and k change at almost every token
    /// and a step that kept a stale or a sequence-wide maximum would fail; the temperature and non-Taylor coefficients
    /// of the odd cases take part too.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void Steps_match_the_dense_causal_reference_at_every_position(int order, FastmaxNormalization normalization, int prompt, int total, bool unusual)
    {
        using var scope = NewDisposeScope();
        var options = new FastmaxOptions
        {
            Order = order, Normalization = normalization, Causal = true,
            Temperature = unusual ? 0.7 : 1.0, Coefficients = unusual ? new[] { 0.9, 1.3, 0.4 } : null,
        };
        var generator = new Generator((ulong)(100 * order + 10 * (int)normalization + prompt));
        var growth = (1 + arange(total, dtype: ScalarType.Float64) / 3).view(1, 1, total, 1);
        Tensor Draw(long d) => randn(new long[] { 2, 3, total, d }, dtype: ScalarType.Float64, generator: generator) * growth;
        var (q, k, v) = (Draw(5), Draw(5), Draw(7));
        var expected = FastmaxDense.Attention(q, k, v, options);                                 // [2, 3, total, 7]

        foreach (bool loop in new[] { true, false })                                             // the written-out step and its tensor-op reference
        {
            using var state = FastmaxRecurrentState.Prefill(q.narrow(2, 0, prompt), k.narrow(2, 0, prompt), v.narrow(2, 0, prompt), options);
            state.UseLoop = loop;
            Assert.Equal(prompt, state.Tokens);
            for (int t = prompt; t < total; t++)
            {
                var o = state.Step(q.narrow(2, t, 1), k.narrow(2, t, 1), v.narrow(2, t, 1));
                ErrorReport.Of($"o at t={t} (p={order}, {normalization}, prompt {prompt}, {(loop ? "loop" : "tensor ops")})", o, expected.narrow(2, t, 1)).Require(1e-10);
            }
            Assert.Equal(total, state.Tokens);
            long features = TaylorFeatures.Size(5, order);
            Assert.Equal((2 * 3 * features * 8 + 2 * 2 * 3) * 8, state.Bytes);                  // F·(Dv + 1) + 2 numbers per head, float64
        }
    }

    [Theory]
    [InlineData(1, FastmaxNormalization.MeanCentered)]
    [InlineData(2, FastmaxNormalization.MeanCentered)]
    [InlineData(2, FastmaxNormalization.SquaredNorm)]
    public void The_float32_loop_step_matches_the_tensor_op_step(int order, FastmaxNormalization normalization)
    {
        using var scope = NewDisposeScope();
        var options = new FastmaxOptions { Order = order, Normalization = normalization, Causal = true };
        var generator = new Generator(31);
        Tensor Draw(long n, long d) => randn(new long[] { 1, 4, n, d }, generator: generator);
        var (q, k, v) = (Draw(40, 32), Draw(40, 32), Draw(40, 33));
        using var loop = FastmaxRecurrentState.Prefill(q.narrow(2, 0, 7), k.narrow(2, 0, 7), v.narrow(2, 0, 7), options);
        using var ops = FastmaxRecurrentState.Prefill(q.narrow(2, 0, 7), k.narrow(2, 0, 7), v.narrow(2, 0, 7), options);
        ops.UseLoop = false;
        for (int t = 7; t < 40; t++)
        {
            Tensor Token(Tensor x) => x.narrow(2, t, 1);
            ErrorReport.Of($"float32 step t={t}", loop.Step(Token(q), Token(k), Token(v)), ops.Step(Token(q), Token(k), Token(v))).Require(1e-5);
        }
    }

    [Fact]
    public void A_state_refuses_unmasked_options_and_a_wrong_dtype()
    {
        using var scope = NewDisposeScope();
        var x = randn(1, 1, 4, 3, dtype: ScalarType.Float64);
        var error = Assert.Throws<ArgumentException>(() => FastmaxRecurrentState.Prefill(x, x, x, new FastmaxOptions()));
        Assert.Equal("options", error.ParamName);
        using var state = FastmaxRecurrentState.Prefill(x, x, x, new FastmaxOptions { Causal = true });
        var token = randn(1, 1, 1, 3);                                                          // float32
        var wrong = Assert.Throws<ArgumentException>(() => state.Step(token, token, token));
        Assert.Contains("Float32", wrong.Message);
    }
}
