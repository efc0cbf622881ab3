using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Verification;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>The per-token loops against the broadcast forms they replace, over random shapes, scales and layouts.</summary>
public class PackedFeatureLoopsTests
{
    public static TheoryData<ScalarType> Dtypes() => new() { ScalarType.Float64, ScalarType.Float32 };

    /// <summary>
    /// 60 random cases: D from 1 to 70 (odd and even D̃), 1 to 3 leading dims, 1 to 1200 tokens (split over threads in ParallelSplitTests),
    /// inputs scaled by 1e-3 to 1e3, and chunks narrowed from a longer sequence (not contiguous when B·H &gt; 1).
    /// </summary>
    [Theory]
    [MemberData(nameof(Dtypes))]
    public void Loops_equal_the_broadcast_forms(ScalarType dtype)
    {
        var random = new Random(5);
        var generator = new Generator(7);
        for (int trial = 0; trial < 60; trial++)
        {
            using var scope = NewDisposeScope();
            var (d, n, lead, features, extended, shape) = Sample(random, generator, trial, dtype);
            var u = randn(lead.Append(n).Append(5).ToArray(), dtype: dtype, generator: generator);
            var state = randn(lead.Append(features.Size).Append(5).ToArray(), dtype: dtype, generator: generator);
            string name = $"{shape} {dtype}";

            var phi = features.Build(extended);
            var phiReference = features.BuildByBroadcast(extended);
            Assert.Equal(phiReference.shape, phi.shape);
            ErrorReport.Of($"features ({name})", phi, phiReference).Require(dtype == ScalarType.Float64 ? 1e-15 : 1e-6);

            // φ·W (float32 with AVX-512: features built inside the register tiles); W contiguous, a column-narrowed view, or
            // a transposed view (unit-stride columns, as the causal kernels' running states come).
            int columns = random.Next(1, 40);
            var projected = randn(lead.Append(features.Size).Append(columns + 2).ToArray(), dtype: dtype, generator: generator);
            var w = (trial % 3) switch
            {
                0 => projected.narrow(-1, 1, columns),
                1 => projected.narrow(-1, 0, columns).contiguous(),
                _ => projected.narrow(-1, 0, columns).transpose(-1, -2).contiguous().transpose(-1, -2),
            };
            var projection = features.Project(extended, w);
            Assert.Equal(lead.Append(n).Append(columns).ToArray(), projection.shape);
            var projectionReference = phiReference.to_type(ScalarType.Float64).matmul(w.to_type(ScalarType.Float64));
            ErrorReport.Of($"projection ({name}, C={columns})", projection.to_type(ScalarType.Float64), projectionReference)
                .Require(dtype == ScalarType.Float64 ? 1e-12 : 1e-5);

            // uᵀ·φ (float32 with AVX-512: features built 64 tokens at a time in cache), u a chunk of a longer sequence.
            var uChunk = randn(lead.Append(n + 4).Append(columns).ToArray(), dtype: dtype, generator: generator).narrow(-2, 1, n);
            var stateTransposed = features.StateTransposed(extended, uChunk);
            Assert.Equal(lead.Append(columns).Append(features.Size).ToArray(), stateTransposed.shape);
            var stateReference = uChunk.to_type(ScalarType.Float64).transpose(-1, -2).matmul(phiReference.to_type(ScalarType.Float64));
            ErrorReport.Of($"state ({name}, C={columns})", stateTransposed.to_type(ScalarType.Float64), stateReference)
                .Require(dtype == ScalarType.Float64 ? 1e-12 : 1e-5);

            // The d-major feature gradient as Gradient forms it; the loop and the broadcast passes reduce it alike.
            var featureGradient = u.matmul(state.transpose(-1, -2));
            var dx = PackedFeatureLoops.ChainRule(featureGradient, extended, d, features.Rows);
            var dxReference = features.ChainRuleByBroadcast(featureGradient, extended);
            Assert.Equal(dxReference.shape, dx.shape);
            ErrorReport.Of($"chain rule ({name})", dx, dxReference).Require(dtype == ScalarType.Float64 ? 1e-13 : 1e-5);
        }
    }

    /// <summary>
    /// The float32 gradient (with AVX-512: transposed feature-gradient tiles fused with the chain rule, 32 tokens at a time)
    /// against the same gradient in float64 (libtorch's GEMM, then the chain-rule loop) over 60 random cases as above, u a
    /// chunk of a longer sequence and the state a transposed view every other case.
    /// </summary>
    [Fact]
    public void Float32_gradient_equals_the_float64_gradient()
    {
        var random = new Random(9);
        var generator = new Generator(3);
        for (int trial = 0; trial < 60; trial++)
        {
            using var scope = NewDisposeScope();
            var (_, n, lead, features, extended, shape) = Sample(random, generator, trial, ScalarType.Float64);
            int columns = random.Next(1, 40);
            bool views = trial % 2 == 1;
            var u = views
                ? randn(lead.Append(n + 5).Append(columns).ToArray(), dtype: ScalarType.Float64, generator: generator).narrow(-2, 3, n)
                : randn(lead.Append(n).Append(columns).ToArray(), dtype: ScalarType.Float64, generator: generator);
            var state = views
                ? randn(lead.Append(columns).Append(features.Size).ToArray(), dtype: ScalarType.Float64, generator: generator).transpose(-1, -2)
                : randn(lead.Append(features.Size).Append(columns).ToArray(), dtype: ScalarType.Float64, generator: generator);
            string name = $"{shape} C={columns} views={views}";

            var expected = features.Gradient(extended, u, state);
            var actual = features.Gradient(extended.to_type(ScalarType.Float32), u.to_type(ScalarType.Float32), state.to_type(ScalarType.Float32));
            Assert.Equal(expected.shape, actual.shape);
            ErrorReport.Of($"gradient ({name})", actual.to_type(ScalarType.Float64), expected).Require(1e-4);
        }
    }

    /// <summary>
    /// One random case: D from 1 to 70 (D = 1 in the first three), 1 to 1200 tokens (one in every seventh), 1 to 3 leading
    /// dims, x scaled by 1e-3 to 1e3 and extended, narrowed as a chunk of a longer sequence.
    /// </summary>
    static (int D, long N, long[] Lead, PackedTaylorFeatures Features, Tensor Extended, string Shape) Sample(
        Random random, Generator generator, int trial, ScalarType dtype)
    {
        int d = trial < 3 ? 1 : random.Next(1, 71);
        long n = trial % 7 == 0 ? 1 : random.Next(1, 1201);
        long[] lead = Enumerable.Range(0, random.Next(1, 4)).Select(_ => (long)random.Next(1, 4)).ToArray();
        double scale = Math.Pow(10, random.Next(-3, 4));
        var features = new PackedTaylorFeatures(d, new[] { 1.0, 1.0, 0.5 }, KernelPlan.Cpu);   // the loops; without a plan, the tensor-op forms
        var x = randn(lead.Append(n + 3).Append(d).ToArray(), dtype: dtype, generator: generator) * scale;
        var extended = features.Extend(x).narrow(-2, 2, n);              // a chunk of a longer sequence
        return (d, n, lead, features, extended, $"D={d} n={n} lead=[{string.Join(",", lead)}] scale={scale:g1}");
    }

    [Fact]
    public void Tensors_that_need_autograd_take_the_broadcast_form()
    {
        var features = new PackedTaylorFeatures(3, new[] { 1.0, 1.0, 0.5 });
        using var x = randn(4, 3, dtype: ScalarType.Float64).requires_grad_();
        using var phi = features.Build(features.Extend(x));
        Assert.True(phi.requires_grad);
    }

    /// <summary>
    /// The causal kernels' running states (prefix and suffix, weighted and transposed) against the tensor-op form: 40 random
    /// cases of D 1–40, 1–3 leading dims, 1–20 chunks, 1–34 state columns, delta as a non-contiguous view half of the time;
    /// the carry each leaves behind too.
    /// </summary>
    [Theory]
    [MemberData(nameof(Dtypes))]
    public void Running_states_equal_the_tensor_op_form(ScalarType dtype)
    {
        var random = new Random(9);
        var generator = new Generator(10);
        for (int trial = 0; trial < 40; trial++)
        {
            using var scope = NewDisposeScope();
            var features = new PackedTaylorFeatures(random.Next(1, 41), new[] { 1.0, 0.7, 0.3 }, KernelPlan.Cpu);
            long[] lead = Enumerable.Range(0, random.Next(1, 4)).Select(_ => (long)random.Next(1, 4)).ToArray();
            int chunks = trial < 2 ? 1 : random.Next(1, 21), columns = random.Next(1, 35);
            bool reverse = trial % 2 == 1, strided = random.Next(2) == 0;
            var delta = strided
                ? randn(lead.Append(chunks).Append(features.Size).Append(columns).ToArray(), dtype: dtype, generator: generator).transpose(-1, -2)
                : randn(lead.Append(chunks).Append(columns).Append(features.Size).ToArray(), dtype: dtype, generator: generator);
            var carry = randn(lead.Append(columns).Append(features.Size).ToArray(), dtype: dtype, generator: generator);
            var referenceCarry = carry.clone();
            string name = $"D={features.D} lead=[{string.Join(",", lead)}] G={chunks} C={columns} reverse={reverse} strided={strided} {dtype}";

            var states = features.RunningStates(delta, carry, reverse);
            var reference = features.RunningStatesByTensorOps(delta, referenceCarry, reverse);
            Assert.Equal(reference.shape, states.shape);
            double tolerance = dtype == ScalarType.Float64 ? 1e-13 : 1e-5;
            ErrorReport.Of($"states ({name})", states, reference).Require(tolerance);
            ErrorReport.Of($"carry ({name})", carry, referenceCarry).Require(tolerance);
        }
    }
}
