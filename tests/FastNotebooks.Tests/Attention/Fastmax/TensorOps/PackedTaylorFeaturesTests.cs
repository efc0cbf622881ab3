using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Verification;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.Reference;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.TensorOps;

/// <summary>The gather-free packed features against the polynomial, the gathered features and autograd; packed kernels against the gathered ones.</summary>
public class PackedTaylorFeaturesTests
{
    static readonly double[][] Coefficients = { new[] { 0.7, -1.3 }, new[] { 1.0, 1.0, 0.5 }, new[] { 0.7, -1.3, 0.4 } };

    public static TheoryData<int, int> Shapes()
    {
        var data = new TheoryData<int, int>();
        foreach (int d in new[] { 1, 2, 3, 4, 7, 8, 33 })
            foreach (int c in new[] { 0, 1, 2 }) data.Add(d, c);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Packed_features_reproduce_the_polynomial_and_the_gathered_features(int d, int coefficients)
    {
        var a = Coefficients[coefficients];
        var features = new PackedTaylorFeatures(d, a);
        var generator = new Generator(11);
        using var x = randn(new long[] { 5, d }, dtype: ScalarType.Float64, generator: generator);
        using var y = randn(new long[] { 6, d }, dtype: ScalarType.Float64, generator: generator);
        using var phiX = features.Build(features.Extend(x));
        using var phiY = features.Build(features.Extend(y));
        using var w = features.Weights(ScalarType.Float64, x.device);
        using var packed = (phiX * w.squeeze(-1)).matmul(phiY.t());
        using var gathered = TaylorFeatures.Query(x, a).matmul(TaylorFeatures.Key(y, a.Length - 1).t());
        using var direct = TaylorFeatures.Polynomial(x.matmul(y.t()), a);
        ErrorReport.Of($"packed vs polynomial (D={d}, p={a.Length - 1})", packed, direct).Require(1e-12);
        ErrorReport.Of($"packed vs gathered (D={d}, p={a.Length - 1})", packed, gathered).Require(1e-12);
        // Even D: exactly the symmetric count; odd D: the repeated last row adds (D + 1)/2 features.
        long expected = a.Length == 2 ? d + 1 : TaylorFeatures.Size(d, 2) + (d % 2 == 1 ? (d + 1) / 2 : 0);
        Assert.Equal(expected, features.Size);
        Assert.Equal(features.Size, phiX.shape[^1]);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Packed_gradient_matches_autograd(int d, int coefficients)
    {
        var a = Coefficients[coefficients];
        var features = new PackedTaylorFeatures(d, a);
        var generator = new Generator(13);
        using var x = randn(new long[] { 2, 9, d }, dtype: ScalarType.Float64, generator: generator).requires_grad_();
        using var u = randn(new long[] { 2, 9, 4 }, dtype: ScalarType.Float64, generator: generator);
        using var state = randn(new long[] { 2, features.Size, 4 }, dtype: ScalarType.Float64, generator: generator);
        using var weighted = features.Weigh(state);
        var extended = features.Extend(x);
        using var loss = (features.Build(extended).matmul(weighted) * u).sum();
        var expected = autograd.grad(new[] { loss }, new[] { x })[0];
        using var actual = features.Gradient(extended.detach(), u, weighted);
        ErrorReport.Of($"gradient (D={d}, p={a.Length - 1})", actual, expected).Require(1e-12);
    }

    /// <summary>
    /// The plan of a backend with a budget of 2^19 feature elements (the default is 2^22), so that the small inputs below reach the
    /// kernels' chunk boundaries and head groups.
    /// </summary>
    static KernelPlan SmallBudget(bool cpu) => (cpu ? KernelPlan.Cpu : KernelPlan.TensorOps).WithFeatureChunkElements(1L << 19);

    public static TheoryData<int, int, bool, int, bool> KernelCases()
    {
        var data = new TheoryData<int, int, bool, int, bool>();
        foreach (bool cpu in new[] { false, true })
        {
            foreach (int d in new[] { 7, 32 })
                foreach (int order in new[] { 1, 2 })
                    foreach (bool causal in new[] { false, true }) data.Add(d, order, causal, 2, cpu);
            // 16 heads at D = 32 exceed a budget of 2^19: the kernels then run head by head.
            data.Add(32, 2, false, 16, cpu);
            data.Add(32, 2, true, 16, cpu);
        }
        return data;
    }

    /// <summary>
    /// Several unmasked chunks (with a budget of 2^19, B·H = 2 at D = 32 gives about 470 tokens per chunk, so 1000 queries span three) and
    /// causal chunks of 64 with a KV offset: packed forward and backward equal the gathered path. B·H = 16 goes head by head.
    /// </summary>
    [Theory]
    [MemberData(nameof(KernelCases))]
    public void Packed_kernels_match_the_gathered_kernels_across_chunk_boundaries(int d, int order, bool causal, int heads, bool cpu)
    {
        var plan = SmallBudget(cpu);
        long batch = heads > 2 ? 2 : 1, h = heads / batch;
        Assert.Equal(heads > 2, FastmaxFactorized.SplitHeads(new PackedTaylorFeatures(d, new FastmaxOptions { Order = order }.ResolvedCoefficients(), plan),
            zeros(batch, h, causal ? 200 : 1000, d), causal ? 64 : 256));
        var a = new FastmaxOptions { Order = order }.ResolvedCoefficients();
        int nq = causal ? 200 : 1000, nk = nq + 5, chunk = 64;
        var generator = new Generator(3);
        using var scope = NewDisposeScope();
        var q = FastmaxNormalizer.Normalize(randn(new long[] { batch, h, nq, d }, dtype: ScalarType.Float64, generator: generator), FastmaxNormalization.MeanCentered);
        var k = FastmaxNormalizer.Normalize(randn(new long[] { batch, h, nk, d }, dtype: ScalarType.Float64, generator: generator), FastmaxNormalization.MeanCentered);
        var v = randn(new long[] { batch, h, nk, 3 }, dtype: ScalarType.Float64, generator: generator);
        var dO = randn(new long[] { batch, h, nq, 3 }, dtype: ScalarType.Float64, generator: generator);
        var (o, g) = causal ? FastmaxChunked.Forward(q, k, v, a, chunk, plan) : FastmaxFactorized.Forward(q, k, v, a, chunk, plan);
        var (oRef, gRef) = causal ? ChunkedReference.Forward(q, k, v, a, chunk) : FactorizedReference.Forward(q, k, v, a, chunk);
        string name = $"D={d} p={order} causal={causal} B·H={heads} {plan}";
        ErrorReport.Of($"o ({name})", o, oRef).Require(1e-12);
        ErrorReport.Of($"g ({name})", g, gRef).Require(1e-12);
        var grads = causal ? FastmaxChunked.Backward(q, k, v, o, g, dO, a, chunk, plan) : FastmaxFactorized.Backward(q, k, v, o, g, dO, a, chunk, plan: plan);
        var gradsRef = causal ? ChunkedReference.Backward(q, k, v, o, g, dO, a, chunk) : FactorizedReference.Backward(q, k, v, o, g, dO, a, chunk);
        ErrorReport.Of($"dq ({name})", grads.Dq, gradsRef.Dq).Require(1e-10);
        ErrorReport.Of($"dk ({name})", grads.Dk, gradsRef.Dk).Require(1e-10);
        ErrorReport.Of($"dv ({name})", grads.Dv, gradsRef.Dv).Require(1e-10);
        // The autograd function hands the forward's key state (causal: the state before each chunk) to the backward instead of recomputing it.
        (Tensor Dq, Tensor Dk, Tensor Dv) kept;
        if (causal)
        {
            var keyStates = FastmaxChunked.KeyStates(q, v, a, chunk);
            var (oKept, gKept) = FastmaxChunked.Forward(q, k, v, a, chunk, plan, keyStates);
            Assert.True(Bits.Same(oKept, o) && Bits.Same(gKept, g), $"keeping the key states changed the forward ({name})");
            kept = FastmaxChunked.Backward(q, k, v, o, g, dO, a, chunk, plan, keyStates);
        }
        else
        {
            var (_, _, keyState) = FastmaxFactorized.ForwardKeepingState(q, k, v, a, chunk, plan);
            kept = FastmaxFactorized.Backward(q, k, v, o, g, dO, a, chunk, keyState, plan);
        }
        ErrorReport.Of($"dq, kept state ({name})", kept.Dq, gradsRef.Dq).Require(1e-10);
        ErrorReport.Of($"dk, kept state ({name})", kept.Dk, gradsRef.Dk).Require(1e-10);
        ErrorReport.Of($"dv, kept state ({name})", kept.Dv, gradsRef.Dv).Require(1e-10);
    }

    /// <summary>
    /// Short sequences in a large batch (B·H = 40, N = 50, D = 24, the MNIST model's shape) run in groups of whole
    /// heads, the last group partial: outputs and gradients still equal the gathered kernels, slice for slice.
    /// </summary>
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Heads_grouped_for_short_sequences_match_the_gathered_kernels(bool causal, bool cpu)
    {
        var plan = SmallBudget(cpu);
        var a = new FastmaxOptions { Order = 2 }.ResolvedCoefficients();
        const int chunk = 64;
        var generator = new Generator(11);
        using var scope = NewDisposeScope();
        var q = FastmaxNormalizer.Normalize(randn(new long[] { 8, 5, 50, 24 }, dtype: ScalarType.Float64, generator: generator), FastmaxNormalization.MeanCentered);
        var k = FastmaxNormalizer.Normalize(randn(new long[] { 8, 5, 50, 24 }, dtype: ScalarType.Float64, generator: generator), FastmaxNormalization.MeanCentered);
        var v = randn(new long[] { 8, 5, 50, 6 }, dtype: ScalarType.Float64, generator: generator);
        var dO = randn(new long[] { 8, 5, 50, 6 }, dtype: ScalarType.Float64, generator: generator);
        long group = FastmaxFactorized.HeadsPerGroup(new PackedTaylorFeatures(24, a, plan), q, causal ? chunk : 256);
        Assert.InRange(group, 2, 39);
        Assert.NotEqual(0, 40 % group);

        var (o, g) = causal ? FastmaxChunked.Forward(q, k, v, a, chunk, plan) : FastmaxFactorized.Forward(q, k, v, a, chunk, plan);
        var (oRef, gRef) = causal ? ChunkedReference.Forward(q, k, v, a, chunk) : FactorizedReference.Forward(q, k, v, a, chunk);
        ErrorReport.Of("o", o, oRef).Require(1e-12);
        ErrorReport.Of("g", g, gRef).Require(1e-12);
        var grads = causal ? FastmaxChunked.Backward(q, k, v, o, g, dO, a, chunk, plan) : FastmaxFactorized.Backward(q, k, v, o, g, dO, a, chunk, plan: plan);
        var gradsRef = causal ? ChunkedReference.Backward(q, k, v, o, g, dO, a, chunk) : FactorizedReference.Backward(q, k, v, o, g, dO, a, chunk);
        ErrorReport.Of("dq", grads.Dq, gradsRef.Dq).Require(1e-10);
        ErrorReport.Of("dk", grads.Dk, gradsRef.Dk).Require(1e-10);
        ErrorReport.Of("dv", grads.Dv, gradsRef.Dv).Require(1e-10);
        if (!causal) return;
        // The causal forward's key states, written by each head group into its heads' slice, serve the backward's groups.
        var keyStates = FastmaxChunked.KeyStates(q, v, a, chunk);
        FastmaxChunked.Forward(q, k, v, a, chunk, plan, keyStates);
        var kept = FastmaxChunked.Backward(q, k, v, o, g, dO, a, chunk, plan, keyStates);
        ErrorReport.Of("dq, kept states", kept.Dq, gradsRef.Dq).Require(1e-10);
        ErrorReport.Of("dk, kept states", kept.Dk, gradsRef.Dk).Require(1e-10);
        ErrorReport.Of("dv, kept states", kept.Dv, gradsRef.Dv).Require(1e-10);
    }
}
