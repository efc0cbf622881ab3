using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.TensorOps;
using FastNotebooks.Verification;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>
/// The causal chunk states in one pass (<see cref="FeatureStates.RunningTransposed"/>: each chunk's uᵀ·φ added to the running state
/// from the tiles' scratch) against the two passes it replaces (<see cref="PackedTaylorFeatures.StateTransposed"/> of every chunk,
/// then <see cref="PackedTaylorFeatures.RunningStates"/>), bit for bit, and against the tensor-op form in float64.
/// </summary>
public class ChunkStatesTests
{
    /// <summary>
    /// 40 random cases: D 31–70 (the state panels' range; windows and leftover features), 1–3 leading dims, 1–6 chunks of 1–150
    /// tokens (partial and several blocks of 64), 1–40 columns of u (the last a column of ones added in cache, half of the time),
    /// raw or extended inputs, prefix or suffix states, written to a
    /// new tensor or into a view of a longer run of chunks; the carry each leaves behind, every element outside the view unchanged,
    /// and the stage clock showing that no separate running-states pass ran.
    /// </summary>
    [Avx512Fact]
    public void One_pass_equals_the_chunk_states_then_the_running_states()
    {
        var random = new Random(21);
        var generator = new Generator(22);
        var a = new[] { 1.0, 0.7, 0.3 };
        for (int trial = 0; trial < 40; trial++)
        {
            using var scope = NewDisposeScope();
            int d = trial < 4 ? new[] { 31, 32, 63, 64 }[trial] : random.Next(31, 71);
            long[] lead = Enumerable.Range(0, random.Next(1, 4)).Select(_ => (long)random.Next(1, 4)).ToArray();
            int chunks = random.Next(1, 7), n = trial % 5 == 0 ? 128 : random.Next(1, 151), columns = random.Next(1, 41);
            bool reverse = trial % 2 == 1, raw = random.Next(2) == 0, intoView = random.Next(2) == 0, appendOne = random.Next(2) == 0 && columns > 1;
            var clock = new StageClock();
            var features = new PackedTaylorFeatures(d, a, KernelPlan.Cpu.WithClock(clock));
            var twoPass = new PackedTaylorFeatures(d, a, KernelPlan.Cpu);
            string name = $"D={d} lead=[{string.Join(",", lead)}] G={chunks} n={n} C={columns} reverse={reverse} raw={raw} into={intoView} appendOne={appendOne}";

            // Chunks narrowed from a longer sequence, as the causal kernels' blocks are.
            var x = randn(lead.Append(chunks * n + 3).Append(d).ToArray(), generator: generator);
            var input = raw ? x : features.Extend(x);
            var blocks = input.narrow(-2, 2, chunks * n).unflatten(lead.Length, new long[] { chunks, n });
            // With appendOne the kernel gets u without its last column of ones, and the two passes [u, 1] as a tensor.
            var uOne = randn(lead.Append(chunks * n + 1).Append(columns).ToArray(), generator: generator).narrow(-2, 1, chunks * n).unflatten(lead.Length, new long[] { chunks, n });
            if (appendOne) uOne.narrow(-1, columns - 1, 1).fill_(1);
            var u = appendOne ? uOne.narrow(-1, 0, columns - 1) : uOne;
            var carry = randn(lead.Append(columns).Append(features.Size).ToArray(), generator: generator);
            var (twoPassCarry, referenceCarry) = (carry.clone(), carry.to_type(ScalarType.Float64));

            long[] statesShape = lead.Append(chunks).Append(columns).Append(features.Size).ToArray();
            var longer = randn(lead.Append(chunks + 2).Append(columns).Append(features.Size).ToArray(), generator: generator);
            var before = longer.clone();
            var into = intoView ? longer.narrow(-3, 1, chunks) : null;
            var states = features.ChunkStates(blocks, u, carry, reverse, into, appendOne);                                // [..., G, F, C]
            Assert.Equal(lead.Append(chunks).Append(features.Size).Append(columns).ToArray(), states.shape);
            Assert.DoesNotContain(clock.Stages, s => s.Stage == KernelPlan.Stages.RunningStates);

            using var delta = twoPass.StateTransposed(blocks, uOne);
            var expected = twoPass.RunningStates(delta, twoPassCarry, reverse);
            Assert.True(Bits.Same(states, expected), $"states differ from the two passes' ({name}): {ErrorReport.Of("states", states, expected).RelativeError:E2}");
            Assert.True(Bits.Same(carry, twoPassCarry), $"the carry differs from the two passes' ({name})");
            if (into is not null)
            {
                Assert.True(Bits.Same(into.transpose(-1, -2), states), $"the states returned are not the view written ({name})");
                foreach (long g in new long[] { 0, chunks + 1 })
                    Assert.True(Bits.Same(longer.select(-3, g), before.select(-3, g)), $"chunk {g} of the longer tensor changed ({name})");
            }

            // In float64 through tensor ops: the features built and multiplied, the running sums by cumulative sums.
            var reference = new PackedTaylorFeatures(d, a, KernelPlan.TensorOps);
            var referenceStates = reference.RunningStates(reference.StateTransposed(reference.Extend(x.to_type(ScalarType.Float64)).narrow(-2, 2, chunks * n)
                .unflatten(lead.Length, new long[] { chunks, n }), uOne.to_type(ScalarType.Float64)), referenceCarry, reverse);
            ErrorReport.Of($"states against float64 ({name})", states.to_type(ScalarType.Float64), referenceStates).Require(1e-5);
            ErrorReport.Of($"carry against float64 ({name})", carry.to_type(ScalarType.Float64), referenceCarry).Require(1e-5);
            Assert.Equal(statesShape, (into ?? states.transpose(-1, -2)).shape);
        }
    }

    /// <summary>Where the one pass cannot run the plan takes the two passes, and the kernel names what it refuses.</summary>
    [Fact]
    public void Other_inputs_take_the_two_passes_and_bad_ones_are_named()
    {
        using var scope = NewDisposeScope();
        var a = new[] { 1.0, 1.0, 0.5 };
        var generator = new Generator(3);
        // Float64 and D below the panels' range: the two passes, timed as such.
        foreach (var (d, dtype) in new[] { (32, ScalarType.Float64), (8, ScalarType.Float32) })
        {
            var clock = new StageClock();
            var features = new PackedTaylorFeatures(d, a, KernelPlan.Cpu.WithClock(clock));
            var blocks = features.Extend(randn(new long[] { 2, 3, 16, d }, dtype: dtype, generator: generator));
            var u = randn(new long[] { 2, 3, 16, 5 }, dtype: dtype, generator: generator);
            var carry = zeros(new long[] { 2, 5, features.Size }, dtype: dtype);
            var states = features.ChunkStates(blocks, u, carry, reverse: false);
            Assert.Equal(new long[] { 2, 3, features.Size, 5 }, states.shape);
            Assert.Contains(clock.Stages, s => s.Stage == KernelPlan.Stages.RunningStates);
        }

        var f32 = new PackedTaylorFeatures(32, a, KernelPlan.Cpu);
        var x = f32.Extend(randn(new long[] { 1, 2, 64, 32 }, generator: generator));
        var v = randn(new long[] { 1, 2, 64, 4 }, generator: generator);
        var c = zeros(new long[] { 1, 4, f32.Size });
        var wrongInto = zeros(new long[] { 1, 2, 4, f32.Size + 1 });
        var error = Assert.Throws<ArgumentException>(() => FeatureStates.RunningTransposed(x, v, c, f32.WeightValues, 32, f32.Rows, reverse: false, wrongInto));
        Assert.Equal("into", error.ParamName);
        error = Assert.Throws<ArgumentException>(() => FeatureStates.RunningTransposed(x, v, c, new double[3], 32, f32.Rows, reverse: false));
        Assert.Equal("weights", error.ParamName);
    }
}
