using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Verification;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.Reference;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax.Cpu;

/// <summary>The normalization's per-token loops against the tensor-op forms they replace, and the whole node against the dense twin.</summary>
public class MaxNormLoopsTests
{
    /// <summary>
    /// 60 random cases: D from 1 to 70 (16, 32 and 64 among them: the zmm forms), 1 to 3 leading dims, 1 to 1200 tokens (the loops split over threads in ParallelSplitTests), inputs scaled by
    /// 1e-3 to 1e3 around an offset (what centring removes), and every other case a non-contiguous view.
    /// </summary>
    [Theory]
    [MemberData(nameof(PackedFeatureLoopsTests.Dtypes), MemberType = typeof(PackedFeatureLoopsTests))]
    public void Loops_equal_the_tensor_op_forms(ScalarType dtype)
    {
        var random = new Random(11);
        var generator = new Generator(13);
        double tight = dtype == ScalarType.Float64 ? 1e-13 : 1e-5;
        for (int trial = 0; trial < 60; trial++)
        {
            using var scope = NewDisposeScope();
            int d = trial < 3 ? 1 : trial < 6 ? 16 << (trial - 3) : random.Next(1, 71);
            long n = trial % 7 == 0 ? 1 : random.Next(1, 1201);
            long[] lead = Enumerable.Range(0, random.Next(1, 4)).Select(_ => (long)random.Next(1, 4)).ToArray();
            double scale = Math.Pow(10, random.Next(-3, 4));
            bool centre = trial % 2 == 0;
            Tensor Input() => trial % 2 == 1
                ? randn(lead.Append(d).Append(n).ToArray(), dtype: dtype, generator: generator).transpose(-1, -2)  // not contiguous
                : randn(lead.Append(n).Append(d).ToArray(), dtype: dtype, generator: generator);
            var x = (Input() + 3) * scale;
            var (dy, y) = (Input(), Input());
            var alpha = randn(lead.Append(n).ToArray(), dtype: dtype, generator: generator);
            var beta = randn(lead.Append(n).ToArray(), dtype: dtype, generator: generator);
            string name = $"D={d} n={n} lead=[{string.Join(",", lead)}] scale={scale:g1} centre={centre} {dtype}";

            var (c, norms) = MaxNormLoops.CentreAndNorm(x, centre);
            var (cReference, normsReference) = MaxNormFunction.CentreAndNorm(x, centre);
            // Centring cancels the offset 3·scale: what remains carries that much absolute roundoff.
            double cancelled = 3 * scale * (dtype == ScalarType.Float64 ? 1e-15 : 1e-6) * 8;
            ErrorReport.Of($"centred ({name})", c, cReference).Require(tight, cancelled);
            ErrorReport.Of($"norms ({name})", norms, normsReference).Require(tight, cancelled * Math.Sqrt(d));
            ErrorReport.Of($"token dots ({name})", MaxNormLoops.TokenDots(dy, y), (dy * y).sum(-1)).Require(tight);
            ErrorReport.Of($"centred combination ({name})", MaxNormLoops.CentredCombination(dy, y, alpha, beta, centre),
                MaxNormFunction.CentredCombination(dy, y, alpha, beta, centre)).Require(tight, tight * 10);
            if (dtype == ScalarType.Float32 && MaxNormZmm.Takes(d))
            {
                // The unmasked forward in two passes: the centred tokens over the largest norm, that norm and its (first) token.
                var (normalized, tokenNorms, largest, holder, floored) = MaxNormLoops.SharedNormalized(x, centre);
                var holderReference = normsReference.argmax(-1, keepdim: true);
                var largestReference = normsReference.gather(-1, holderReference);
                ErrorReport.Of($"two-pass norms ({name})", tokenNorms, normsReference).Require(tight, cancelled * Math.Sqrt(d));
                ErrorReport.Of($"largest norms ({name})", largest, largestReference).Require(tight, cancelled * Math.Sqrt(d));
                Assert.True(holder.eq(holderReference).all().item<bool>(), $"holders differ ({name})");
                ErrorReport.Of($"two-pass values ({name})", normalized, cReference / largestReference.clamp_min(FastmaxNormalizer.NormFloor).unsqueeze(-1))
                    .Require(tight, cancelled / largestReference.min().item<float>());
                Assert.True(floored.eq(largest.clamp_min(FastmaxNormalizer.NormFloor)).all().item<bool>(), $"scales differ ({name})");
            }
        }
    }

    /// <summary>
    /// The node (loops inside) against autograd through the dense twin in float64, over 24 random cases per dtype: value
    /// and input gradient, both max-norm normalizations, causal and not.
    /// </summary>
    [Theory]
    [MemberData(nameof(PackedFeatureLoopsTests.Dtypes), MemberType = typeof(PackedFeatureLoopsTests))]
    public void Normalizer_with_loops_matches_the_dense_twin(ScalarType dtype)
    {
        var random = new Random(17);
        var generator = new Generator(19);
        for (int trial = 0; trial < 24; trial++)
        {
            using var scope = NewDisposeScope();
            int d = trial < 2 ? 1 : trial < 6 ? 16 * (trial - 1) : random.Next(1, 65);   // 16 … 64: the zmm forms
            long n = trial % 5 == 0 ? 1 : random.Next(1, 900);
            var normalization = trial % 2 == 0 ? FastmaxNormalization.MeanCentered : FastmaxNormalization.ZeroCentered;
            bool causal = trial % 4 >= 2;
            double scale = Math.Pow(10, random.Next(-2, 3));
            var x64 = randn(new long[] { 2, 2, n, d }, dtype: ScalarType.Float64, generator: generator) * scale;
            var weights64 = randn(new long[] { 2, 2, n, d }, dtype: ScalarType.Float64, generator: generator);
            string name = $"{normalization} causal={causal} N={n} D={d} scale={scale:g1} {dtype}";

            (Tensor Value, Tensor Gradient) Run(Func<Tensor, Tensor> normalize, ScalarType type)
            {
                var input = x64.to(type).detach().requires_grad_();
                var value = normalize(input);
                var loss = (value * weights64.to(type)).sum();
                return (value.detach(), autograd.grad(new[] { loss }, new[] { input })[0]);
            }
            var (expected, expectedGradient) = Run(t => FastmaxDense.Normalize(t, normalization, causal), ScalarType.Float64);
            var (actual, actualGradient) = Run(t => FastmaxNormalizer.Normalize(t, normalization, causal, KernelPlan.Cpu), dtype);
            var (tolerance, roundoff) = dtype == ScalarType.Float64 ? (1e-12, 1e-14) : (1e-4, 1e-5);
            ErrorReport.Of($"value ({name})", actual, expected).Require(tolerance, roundoff);
            ErrorReport.Of($"gradient ({name})", actualGradient, expectedGradient)
                .Require(tolerance, roundoff * weights64.abs().max().item<double>() / scale);
        }
    }

    /// <summary>
    /// The causal normalization's one-pass forward and two-pass backward (<see cref="MaxNormLoops.RunningNormalized"/>,
    /// <see cref="MaxNormLoops.RunningScaleGradient"/>) give the bits of the steps they replace (the per-token loops with
    /// <c>cummax</c>, <c>clamp_min</c>, the division, and the backward's tensor ops on [..., N] around <see cref="MaxNormLoops.TokenDots"/>
    /// and <see cref="MaxNormLoops.CentredCombination(Tensor, Tensor, Tensor, Tensor, bool)"/>), over random shapes, scales and offsets,
    /// with ties of the running maximum.
    /// </summary>
    [Theory]
    [MemberData(nameof(PackedFeatureLoopsTests.Dtypes), MemberType = typeof(PackedFeatureLoopsTests))]
    public void The_running_normalization_in_one_pass_gives_the_bits_of_the_steps_it_replaces(ScalarType dtype)
    {
        var random = new Random(23);
        var generator = new Generator(29);
        for (int trial = 0; trial < 30; trial++)
        {
            using var scope = NewDisposeScope();
            int d = trial < 2 ? 1 : trial < 5 ? 16 << (trial - 2) : random.Next(1, 70);   // 16, 32, 64: the zmm forms
            long n = trial % 6 == 0 ? 1 : random.Next(1, 700);
            bool centre = trial % 2 == 0;
            double scale = Math.Pow(10, random.Next(-3, 4));
            var x = (randn(new long[] { 2, 3, n, d }, dtype: dtype, generator: generator) + 1) * scale;
            if (trial % 5 == 1) x[0, 1] = full(new long[] { n, d }, 2.0, dtype: dtype);   // one slice of equal tokens: ties, and zero norms when centred
            var dy = randn(new long[] { 2, 3, n, d }, dtype: dtype, generator: generator);
            string name = $"D={d} n={n} centre={centre} scale={scale:g1} {dtype}";
            void Same(string what, Tensor actual, Tensor expected) =>
                Assert.True(actual.eq(expected).all().item<bool>(), $"{what} differ ({name})");

            var (y, norms, largest, holders, floored) = MaxNormLoops.RunningNormalized(x, centre);
            var (c, normsBefore) = MaxNormLoops.CentreAndNorm(x, centre);
            var (largestBefore, holdersBefore) = normsBefore.cummax(-1);
            var scaleBefore = largestBefore.clamp_min(FastmaxNormalizer.NormFloor);
            Same("values", y, c / scaleBefore.unsqueeze(-1));
            Same("norms", norms, normsBefore);
            Same("running maxima", largest, largestBefore);
            Same("holders", holders, holdersBefore);
            Same("scales", floored, scaleBefore);

            var active = largest.ge(FastmaxNormalizer.NormFloor);
            var dLargest = (-MaxNormLoops.TokenDots(dy, y) / floored).mul_(active);
            var beta = zeros_like(norms).scatter_add_(-1, holders, dLargest).mul_(floored / norms.clamp_min(FastmaxNormalizer.NormFloor));
            var before = MaxNormLoops.CentredCombination(dy, y, floored.reciprocal(), beta, centre);
            Same("gradients", MaxNormLoops.RunningScaleGradient(dy, y, norms, floored, holders, active, centre), before);
        }
    }

    [Fact]
    public void Tensors_that_need_autograd_take_the_tensor_op_forms()
    {
        using var x = randn(1, 1, 4, 3, dtype: ScalarType.Float64).requires_grad_();
        Assert.False(TokenLoops.Supports(x));
        using (no_grad()) Assert.True(TokenLoops.Supports(x));
        using var integers = ones(1, 1, 4, 3, dtype: ScalarType.Int32);
        Assert.False(TokenLoops.Supports(integers));
    }
}
