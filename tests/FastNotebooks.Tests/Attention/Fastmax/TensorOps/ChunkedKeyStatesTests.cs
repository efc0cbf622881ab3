using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.TensorOps;
using FastNotebooks.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.TensorOps;

/// <summary>
/// The causal forward's key states kept for the backward (<see cref="FastmaxChunked.KeyStates"/>): each is the weighted state
/// of the keys before its chunk, and a backward given them computes what it computes making them again, bit for bit.
/// </summary>
public class ChunkedKeyStatesTests
{
    /// <summary>One random case: shapes, KV offset, chunk, order, dtype and plan.</summary>
    sealed record Case(long Batch, long Heads, long Nq, long Offset, int D, int Dv, int Chunk, int Order, ScalarType Dtype, KernelPlan Plan)
    {
        public override string ToString() =>
            $"B={Batch} H={Heads} Nq={Nq} offset={Offset} D={D} Dv={Dv} chunk={Chunk} p={Order} {Dtype} {Plan}";
    }

    /// <summary>
    /// Random cases; half with D + 1 ≥ 32 (where the float32 tiles read the kept states in place), half with a feature budget of
    /// one to three chunks of all heads (several groups of chunks, and head groups where a head's chunk alone overflows it).
    /// </summary>
    static IEnumerable<Case> Cases(int count, int seed)
    {
        var random = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            long batch = random.Next(1, 3), heads = random.Next(1, 4);
            int d = random.Next(2) == 0 ? random.Next(2, 41) : random.Next(31, 41), chunk = new[] { 8, 16, 33, 64 }[random.Next(4)];
            int order = random.Next(4) == 0 ? 1 : 2;
            var plan = i % 3 == 2 ? KernelPlan.TensorOps : KernelPlan.Cpu;
            if (random.Next(2) == 0)
            {
                long features = new PackedTaylorFeatures(d, new FastmaxOptions { Order = order }.ResolvedCoefficients()).Size;
                plan = plan.WithFeatureChunkElements(batch * heads * features * chunk * random.Next(1, 4) / random.Next(1, 3));
            }
            yield return new Case(batch, heads, random.Next(1, 300), random.Next(3) == 0 ? random.Next(1, 40) : 0, d, random.Next(1, 40), chunk,
                order, i % 2 == 0 ? ScalarType.Float32 : ScalarType.Float64, plan);
        }
    }

    static (Tensor Q, Tensor K, Tensor V, Tensor GradOutput) Inputs(Case c, Generator generator)
    {
        long nk = c.Nq + c.Offset;
        Tensor Normalized(long n) =>
            FastmaxNormalizer.Normalize(randn(new[] { c.Batch, c.Heads, n, c.D }, dtype: c.Dtype, generator: generator), FastmaxNormalization.MeanCentered);
        return (Normalized(c.Nq), Normalized(nk), randn(new[] { c.Batch, c.Heads, nk, (long)c.Dv }, dtype: c.Dtype, generator: generator),
            randn(new[] { c.Batch, c.Heads, c.Nq, (long)c.Dv }, dtype: c.Dtype, generator: generator));
    }

    [Fact]
    public void Kept_key_states_give_the_bits_of_states_made_again()
    {
        var generator = new Generator(29);
        foreach (var c in Cases(40, 31))
        {
            using var scope = NewDisposeScope();
            var a = new FastmaxOptions { Order = c.Order }.ResolvedCoefficients();
            var (q, k, v, dO) = Inputs(c, generator);
            var (o, g) = FastmaxChunked.Forward(q, k, v, a, c.Chunk, c.Plan);
            var keyStates = FastmaxChunked.KeyStates(q, v, a, c.Chunk);
            var (oKept, gKept) = FastmaxChunked.Forward(q, k, v, a, c.Chunk, c.Plan, keyStates);
            Assert.True(Bits.Same(oKept, o) && Bits.Same(gKept, g), $"keeping the key states changed the forward ({c})");
            var made = FastmaxChunked.Backward(q, k, v, o, g, dO, a, c.Chunk, c.Plan);
            var kept = FastmaxChunked.Backward(q, k, v, o, g, dO, a, c.Chunk, c.Plan, keyStates);
            Assert.True(Bits.Same(kept.Dq, made.Dq), $"dq ({c}): {ErrorReport.Of("dq", kept.Dq, made.Dq)}");
            Assert.True(Bits.Same(kept.Dk, made.Dk), $"dk ({c}): {ErrorReport.Of("dk", kept.Dk, made.Dk)}");
            Assert.True(Bits.Same(kept.Dv, made.Dv), $"dv ({c}): {ErrorReport.Of("dv", kept.Dv, made.Dv)}");
        }
    }

    /// <summary>State c is (w ⊙ Σ φ(k̃_j)ᵀ [v_j, 1])ᵀ over the keys before chunk c (the KV offset's keys included), by tensor ops in float64.</summary>
    [Fact]
    public void Each_kept_state_is_the_weighted_state_of_the_keys_before_its_chunk()
    {
        var generator = new Generator(37);
        foreach (var c in Cases(20, 41).Select(c => c with { Dtype = ScalarType.Float64 }))
        {
            using var scope = NewDisposeScope();
            var a = new FastmaxOptions { Order = c.Order }.ResolvedCoefficients();
            var (q, k, v, _) = Inputs(c, generator);
            var keyStates = FastmaxChunked.KeyStates(q, v, a, c.Chunk);
            FastmaxChunked.Forward(q, k, v, a, c.Chunk, c.Plan, keyStates);
            var features = new PackedTaylorFeatures(c.D, a);
            var phi = features.Build(features.Extend(k));                                  // [B, H, Nk, F]
            var vOne = cat(new[] { v, ones_like(v.narrow(-1, 0, 1)) }, -1);                // [B, H, Nk, Dv + 1]
            long chunks = (c.Nq + c.Chunk - 1) / c.Chunk;
            Assert.Equal(new[] { c.Batch, c.Heads, chunks, c.Dv + 1L, features.Size }, keyStates.Shape());
            for (long i = 0; i < chunks; i++)
            {
                long before = c.Offset + i * c.Chunk;
                var state = phi.narrow(2, 0, before).transpose(-1, -2).matmul(vOne.narrow(2, 0, before));   // [B, H, F, Dv + 1]
                var expected = features.Weigh(state).transpose(-1, -2);
                ErrorReport.Of($"state before chunk {i} ({c})", keyStates.select(2, i), expected).Require(c.Plan.CpuKernels ? 1e-12 : 1e-13);
            }
        }
    }

    [Fact]
    public void Key_states_of_another_shape_are_refused_by_name()
    {
        var a = new FastmaxOptions { Order = 2 }.ResolvedCoefficients();
        using var q = randn(1, 2, 100, 8);
        using var v = randn(1, 2, 100, 4);
        using var states = FastmaxChunked.KeyStates(q, v, a, 32);                             // 4 chunks of 32
        var error = Assert.Throws<ArgumentException>(() => FastmaxChunked.Forward(q, q, v, a, 16, KernelPlan.Cpu, states));
        Assert.Equal("keyStates", error.ParamName);
        Assert.Contains("[1, 2, 7, 5, 45]", error.Message);
        using var doubles = states.to(ScalarType.Float64);
        error = Assert.Throws<ArgumentException>(() => FastmaxChunked.Backward(q, q, v, q, q.select(-1, 0), v, a, 32, KernelPlan.Cpu, doubles));
        Assert.Equal("keyStates", error.ParamName);
    }
}
