using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.TensorOps;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>
/// The max-norm normalization folded into the unmasked order-2 forward (<see cref="FoldedNormalization"/>): q and k centred per
/// token where the kernels build x̃, the scales 1/(T·m_q·m_k) in the weights. Against the float64 reference backend (which
/// normalizes first, by other code), on inputs whose means and scales are far from those of normalized tokens, so a missed centring
/// or a wrong power of the scale shows.
/// </summary>
public class FoldedNormalizationTests
{
    // float32 against float64 over sums of up to a few hundred tokens.
    const double Tolerance = 2e-5;

    [Avx512Theory]
    [InlineData(32, 100, 1, 1, FastmaxNormalization.MeanCentered, 1.0, 0L)]      // a partial block of 64 tokens and strip of 32
    [InlineData(33, 70, 1, 2, FastmaxNormalization.MeanCentered, 0.7, 0L)]       // an odd tail of the state panels' windows
    [InlineData(64, 300, 2, 3, FastmaxNormalization.ZeroCentered, 1.0, 0L)]
    [InlineData(32, 257, 2, 2, FastmaxNormalization.MeanCentered, 1.3, 20_000L)] // a small budget: heads in groups, tokens in chunks
    public void The_folded_forward_is_the_normalized_one(int d, int n, int b, int h, FastmaxNormalization normalization, double temperature, long budget)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(7 + (ulong)(d * n));
        var shape = new long[] { b, h, n, d };
        var q = randn(shape, generator: generator) * 3 + 0.5;
        var k = randn(shape, generator: generator) * 0.2 - 1;
        var v = randn(shape, generator: generator);
        var options = new FastmaxOptions { Order = 2, Normalization = normalization, Temperature = temperature }
            is var o && budget > 0 ? o with { FeatureChunkElements = budget } : o;
        var plan = FastmaxDispatch.Plan(FastmaxBackend.Cpu, options.FeatureChunkElements);
        var a = options.ResolvedCoefficients();
        using (no_grad())
        {
            Assert.True(FastmaxDispatch.FoldsNormalization(options, a, plan, FastmaxAlgorithm.Factorized, false, q, k, v));
            Assert.NotNull(FoldedNormalization.Attention(q, k, v, options, a, options.ResolvedChunkSize(d), plan));
            var folded = FastmaxFunctional.Attention(q, k, v, options with { Algorithm = FastmaxAlgorithm.Factorized });
            var reference = FastmaxFunctional.Attention(q.to(ScalarType.Float64), k.to(ScalarType.Float64), v.to(ScalarType.Float64),
                options with { Backend = FastmaxBackend.Reference });
            double error = (folded.to(ScalarType.Float64) - reference).abs().max().item<double>() / reference.abs().max().item<double>();
            Assert.True(error < Tolerance, $"relative error {error:E2} at D={d} N={n} {normalization} T={temperature}");
        }
    }

    [Avx512Theory]
    [InlineData(32, 100, 1, 1, FastmaxNormalization.MeanCentered, 1.0, 0L)]
    [InlineData(33, 70, 1, 2, FastmaxNormalization.MeanCentered, 0.7, 0L)]
    [InlineData(64, 300, 2, 3, FastmaxNormalization.ZeroCentered, 1.0, 0L)]
    [InlineData(32, 257, 2, 2, FastmaxNormalization.MeanCentered, 1.3, 20_000L)]
    public void The_folded_gradients_are_those_of_normalizing_first(int d, int n, int b, int h, FastmaxNormalization normalization, double temperature, long budget)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(13 + (ulong)(d * n));
        var shape = new long[] { b, h, n, d };
        var inputs = new[] { randn(shape, generator: generator) * 3 + 0.5, randn(shape, generator: generator) * 0.2 - 1, randn(shape, generator: generator) };
        var weights = randn(shape, generator: generator);
        var options = new FastmaxOptions { Order = 2, Normalization = normalization, Temperature = temperature, Algorithm = FastmaxAlgorithm.Factorized }
            is var o && budget > 0 ? o with { FeatureChunkElements = budget } : o;
        var plan = FastmaxDispatch.Plan(FastmaxBackend.Cpu, options.FeatureChunkElements);
        Tensor[] Gradients(ScalarType dtype, FastmaxOptions opts)
        {
            var leaves = inputs.Select(t => t.to(dtype).detach().requires_grad_()).ToArray();
            var output = FastmaxFunctional.Attention(leaves[0], leaves[1], leaves[2], opts);
            return autograd.grad(new[] { (output * weights.to(dtype)).sum() }, leaves).Select(t => t.to(ScalarType.Float64)).ToArray();
        }
        using (enable_grad())
        {
            var leaves = inputs.Select(t => t.detach().requires_grad_()).ToArray();
            Assert.True(FastmaxDispatch.FoldsNormalization(options, options.ResolvedCoefficients(), plan, FastmaxAlgorithm.Factorized, false, leaves[0], leaves[1], leaves[2]));
            var folded = Gradients(ScalarType.Float32, options);
            var reference = Gradients(ScalarType.Float64, options with { Backend = FastmaxBackend.Reference });
            foreach (var (name, i) in new[] { ("dq", 0), ("dk", 1), ("dv", 2) })
            {
                double error = (folded[i] - reference[i]).abs().max().item<double>() / reference[i].abs().max().item<double>();
                Assert.True(error < 1e-4, $"{name}: relative error {error:E2} at D={d} N={n} {normalization} T={temperature}");
            }
        }
    }

    /// <summary>
    /// Fewer queries than keys, and q, k, v as a model hands them over: views of [B, N, H, D] transposed to [B, H, N, D], not contiguous.
    /// </summary>
    [Avx512Fact]
    public void Cross_attention_on_transposed_views_folds_to_the_normalized_result()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(37);
        Tensor View(long n) => (randn(new long[] { 2, n, 3, 32 }, generator: generator) * 2 + 0.3).transpose(1, 2);
        var (q, k, v) = (View(50), View(300), View(300));
        Assert.False(q.is_contiguous());
        var weights = randn(new long[] { 2, 3, 50, 32 }, generator: generator);
        var options = new FastmaxOptions { Order = 2, Algorithm = FastmaxAlgorithm.Factorized };
        Assert.True(FastmaxDispatch.FoldsNormalization(options, options.ResolvedCoefficients(), KernelPlan.Cpu, FastmaxAlgorithm.Factorized, false, q, k, v));
        Tensor[] Run(ScalarType dtype, FastmaxOptions opts)
        {
            var leaves = new[] { q, k, v }.Select(t => t.to(dtype).detach().requires_grad_()).ToArray();
            var o = FastmaxFunctional.Attention(leaves[0], leaves[1], leaves[2], opts);
            return new[] { o.detach() }.Concat(autograd.grad(new[] { (o * weights.to(dtype)).sum() }, leaves)).Select(t => t.to(ScalarType.Float64)).ToArray();
        }
        var folded = Run(ScalarType.Float32, options);
        var reference = Run(ScalarType.Float64, options with { Backend = FastmaxBackend.Reference });
        foreach (var (name, i) in new[] { ("o", 0), ("dq", 1), ("dk", 2), ("dv", 3) })
        {
            double error = (folded[i] - reference[i]).abs().max().item<double>() / reference[i].abs().max().item<double>();
            Assert.True(error < 1e-4, $"{name}: relative error {error:E2}");
        }
    }

    [Avx512Theory]
    [InlineData(32, 100)]
    [InlineData(33, 45)]
    public void Centring_in_cache_is_centring_first(int d, int n)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(11 + (ulong)d);
        var a = new FastmaxOptions { Order = 2 }.ResolvedCoefficients();
        var raw = randn(new long[] { 1, 2, n, d }, generator: generator) * 0.3 + 0.8;
        var centred = raw - raw.mean(new long[] { -1 }, keepdim: true);
        var u = randn(new long[] { 1, 2, n, 5 }, generator: generator);
        foreach (var plan in new[] { KernelPlan.Cpu, KernelPlan.TensorOps })
        {
            var centring = new PackedTaylorFeatures(d, a, plan) { CentresRawInputs = true };
            var plain = new PackedTaylorFeatures(d, a, plan);
            var w = randn(new long[] { 1, 2, plain.Size, 5 }, generator: generator);
            void Close(string piece, Tensor inCache, Tensor first)
            {
                double error = (inCache - first).abs().max().item<float>() / (double)first.abs().max().item<float>();
                Assert.True(error < 1e-5, $"{plan}, D={d}: {piece} differs by {error:E2}");
            }
            var input = centring.KernelInput(raw);
            Close("uᵀ·φ", centring.StateTransposed(input, u), plain.StateTransposed(plain.KernelInput(centred), u));
            Close("uᵀ·φ with a column of ones", centring.StateTransposed(input, u, appendOne: true), plain.StateTransposed(plain.KernelInput(centred), u, appendOne: true));
            Close("φ·W", centring.Project(input, w), plain.Project(plain.KernelInput(centred), w));
            // Through the centring: the gradient with respect to x is ∇_c minus its mean over D.
            var dc = plain.Gradient(plain.KernelInput(centred), u, w);
            Close("∇(φ·W)", centring.Gradient(input, u, w), dc - dc.mean(new long[] { -1 }, keepdim: true));
            // A random state's denominators come near zero, where o = numerator / g magnifies any rounding: g and o·g are compared.
            var (o1, g1) = plan.ProjectAndDivide(centring, input, w);
            var (o2, g2) = plan.ProjectAndDivide(plain, plain.KernelInput(centred), w);
            Close("g of φ·W / g", g1, g2);
            Close("o·g of φ·W / g", o1 * g1.unsqueeze(-1), o2 * g2.unsqueeze(-1));
        }
    }

    [Fact]
    public void The_slice_scale_multiplies_each_weight_by_its_power()
    {
        using var scope = NewDisposeScope();
        var a = new double[] { 1, 1, 0.5 };
        const int d = 3;
        var scale = tensor(new[] { 2.0, 0.5 }).view(1, 2, 1, 1);
        var scaled = new PackedTaylorFeatures(d, a) { SliceScale = scale };
        var plain = new PackedTaylorFeatures(d, a);
        var state = ones(1, 2, plain.Size, 1, dtype: ScalarType.Float64);
        // f(s·x·y) = a0 + a1·s·(x·y) + a2·s²·(x·y)²: per slice the weights of x = y = e_0 at degrees 0, 1, 2 sum to f(s).
        var x = tensor(new double[] { 1, 0, 0 }).view(1, 1, 1, d);
        var phi = plain.Build(plain.Extend(x));                         // [1, 1, 1, F]
        var f = phi.matmul(scaled.Weigh(state) * phi.transpose(-1, -2)).flatten();   // Σ_f w_f s^l φ_f(x)²
        Assert.Equal(1 + 2.0 + 0.5 * 4, f[0].item<double>(), 12);
        Assert.Equal(1 + 0.5 + 0.5 * 0.25, f[1].item<double>(), 12);
    }

    [Theory]
    [InlineData(ScalarType.Float32, true, 19)]    // zmm and a scalar tail
    [InlineData(ScalarType.Float32, true, 32)]    // two registers per token
    [InlineData(ScalarType.Float32, false, 32)]
    [InlineData(ScalarType.Float32, true, 7)]     // the generic loop
    [InlineData(ScalarType.Float64, false, 19)]
    public void The_largest_norms_read_once_are_the_largest_token_norms(ScalarType dtype, bool centre, int d)
    {
        using var scope = NewDisposeScope();
        var x = (randn(new long[] { 2, 3, 37, d }, generator: new Generator(5)) * 2 + 1).to(dtype);
        var (_, norms) = MaxNormFunction.CentreAndNorm(x, centre);
        var (max, argmax) = norms.max(-1);
        var expected = max.flatten().to(ScalarType.Float64).data<double>().ToArray();
        var holders = argmax.flatten().data<long>().ToArray();
        var (largest, held) = MaxNormLoops.LargestNorms(x, centre);
        Assert.Equal(expected.Length, largest.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.Equal(expected[i], largest[i], dtype == ScalarType.Float32 ? 1e-4 : 1e-12);
        Assert.Equal(holders, held);   // random tokens: no ties
        Assert.Equal(new double[6], MaxNormLoops.LargestNorms(zeros(2, 3, 0, 4), centre).Norms);
    }

    [Avx512Fact]
    public void A_slice_of_constant_tokens_runs_the_unfolded_path()
    {
        using var scope = NewDisposeScope();
        var options = new FastmaxOptions { Order = 2 };
        var plan = KernelPlan.Cpu;
        var q = randn(1, 2, 80, 32);
        q[0, 1] = full(80, 32, 3.0f);                               // centres to zero: m = 0, below SmallestNorm
        var k = randn(1, 2, 80, 32);
        var v = randn(1, 2, 80, 32);
        using var guard = no_grad();
        Assert.Null(FoldedNormalization.Attention(q, k, v, options, options.ResolvedCoefficients(), 64, plan));
        var o = FastmaxFunctional.Attention(q, k, v, options);
        // q̂ = 0 in that slice: every key gets f(0) = a0, so each output is the mean of v.
        Assert.True(o[0, 1].allclose(v[0, 1].mean(new long[] { 0 }, keepdim: true).expand(80, 32), rtol: 1e-5, atol: 1e-6));
    }

    [Avx512Fact]
    public void Only_the_unmasked_order_2_max_norm_on_the_fused_kernels_folds()
    {
        using var scope = NewDisposeScope();
        var options = new FastmaxOptions { Order = 2 };
        var a = options.ResolvedCoefficients();
        var plan = KernelPlan.Cpu;
        var (q, k, v) = (randn(1, 1, 300, 32), randn(1, 1, 300, 32), randn(1, 1, 300, 32));
        bool Folds(FastmaxOptions o, Tensor qq, Tensor kk, Tensor vv, KernelPlan p, bool regularize = false) =>
            FastmaxDispatch.FoldsNormalization(o, o.ResolvedCoefficients(), p, FastmaxAlgorithm.Factorized, regularize, qq, kk, vv);
        Assert.True(Folds(options, q, k, v, plan));
        Assert.True(Folds(options with { Normalization = FastmaxNormalization.ZeroCentered }, q, k, v, plan));
        Assert.False(Folds(options with { Causal = true }, q, k, v, plan));                            // a running maximum: one scale per token
        Assert.False(Folds(options with { Order = 1 }, q, k, v, plan));
        Assert.False(Folds(options with { Normalization = FastmaxNormalization.None }, q, k, v, plan));
        Assert.False(Folds(options with { Normalization = FastmaxNormalization.SquaredNorm }, q, k, v, plan));
        Assert.False(Folds(options, q, k, v, plan, regularize: true));
        Assert.False(Folds(options, q, k, v, KernelPlan.TensorOps));
        Assert.False(Folds(options, q.to(ScalarType.Float64), k.to(ScalarType.Float64), v.to(ScalarType.Float64), plan));
        Assert.False(FastmaxDispatch.FoldsNormalization(options, a, plan, FastmaxAlgorithm.Quadratic, false, q, k, v));
        Assert.True(Folds(options, q.detach().requires_grad_(), k, v, plan));                        // one autograd node then
    }
}
