using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Fastmax.TensorOps;
using FastNotebooks.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax;

/// <summary>
/// The normalization and the kernel as one autograd node (<see cref="NormalizedFastmaxFunction"/>) against the nodes it replaces:
/// <see cref="MaxNormFunction"/> on q and on k, the temperature's division, <see cref="FastmaxFunction"/>.
/// </summary>
public class NormalizedFastmaxFunctionTests
{
    /// <summary>
    /// Output and the gradients of q, k and v for the loss Σ o ⊙ dO, 40 random cases: orders 1 and 2, unmasked and causal (with
    /// 0–12 extra keys), mean- and zero-centred, temperatures 1 and 0.5–2, float64 and float32, the CPU kernels and the tensor-op
    /// forms, input scales 1e-2 to 1e2. The steps are the same on the same tensors, so the results agree to the last bit.
    /// </summary>
    [Fact]
    public void One_node_gives_the_bits_of_the_separate_nodes()
    {
        var random = new Random(11);
        var generator = new Generator(12);
        for (int trial = 0; trial < 40; trial++)
        {
            using var scope = NewDisposeScope();
            // Trials 0–3 pin the CPU kernels' float32 path at D = 32 for each order, unmasked and causal; the rest are drawn.
            bool pinned = trial < 4;
            int order = pinned ? 1 + trial / 2 : random.Next(1, 3);
            bool causal = pinned ? trial % 2 == 1 : random.Next(2) == 1, centre = pinned || random.Next(3) > 0, float32 = pinned || random.Next(2) == 1;
            double temperature = random.Next(3) == 0 ? 1.0 : 0.5 + 1.5 * random.NextDouble();
            var backend = pinned || random.Next(3) > 0 ? FastmaxBackend.Cpu : FastmaxBackend.TensorOps;
            int b = random.Next(1, 3), h = random.Next(1, 3), nq = random.Next(1, 200), d = pinned ? 32 : random.Next(1, 40), dv = random.Next(1, 24);
            int nk = causal ? nq + (random.Next(3) == 0 ? 0 : random.Next(1, 13)) : random.Next(1, 200);
            var dtype = float32 ? ScalarType.Float32 : ScalarType.Float64;
            double scale = Math.Pow(10, random.Next(-2, 3));
            var q = randn(new long[] { b, h, nq, d }, dtype: dtype, generator: generator) * scale;
            var k = randn(new long[] { b, h, nk, d }, dtype: dtype, generator: generator) * scale;
            var v = randn(new long[] { b, h, nk, dv }, dtype: dtype, generator: generator);
            var dO = randn(new long[] { b, h, nq, dv }, dtype: dtype, generator: generator);
            var options = new FastmaxOptions
            {
                Order = order, Causal = causal, Temperature = temperature, Backend = backend,
                Normalization = centre ? FastmaxNormalization.MeanCentered : FastmaxNormalization.ZeroCentered,
            };
            var a = options.ResolvedCoefficients();
            int chunk = options.ResolvedChunkSize(d);
            var plan = FastmaxDispatch.Plan(backend, options.FeatureChunkElements);
            string name = $"p={order} causal={causal} centre={centre} T={temperature:F2} {dtype} {backend} B={b} H={h} Nq={nq} Nk={nk} D={d} Dv={dv} scale={scale:g1}";

            var joined = LossGradients.Of((x, y, z) => NormalizedFastmaxFunction.Apply(x, y, z, a, causal, chunk, backend, plan, centre, temperature), q, k, v, dO);
            var separate = LossGradients.Of((x, y, z) =>
            {
                var qHat = MaxNormFunction.Apply(x, centre, causal, plan);
                if (temperature != 1.0) qHat = qHat / temperature;
                var kHat = MaxNormFunction.Apply(y, centre, causal, plan);
                return FastmaxFunction.Apply(qHat.contiguous(), kHat.contiguous(), z.contiguous(), a, causal, chunk, backend, plan);
            }, q, k, v, dO);
            string[] what = { "o", "dq", "dk", "dv" };
            for (int i = 0; i < 4; i++)
                Assert.True((joined[i] == separate[i]).all().item<bool>(), $"{what[i]} differs ({name}): largest difference {(joined[i] - separate[i]).abs().max().to(ScalarType.Float64).item<double>():g3}");
        }
    }

    /// <summary>Where the functional call runs this node (given a graph): max-norms and the factorized algorithm, nothing but the temperature between.</summary>
    [Theory]
    [InlineData(FastmaxNormalization.MeanCentered, FastmaxAlgorithm.Factorized, false, FastmaxDropout.LinearTerm, true)]
    [InlineData(FastmaxNormalization.ZeroCentered, FastmaxAlgorithm.Factorized, false, FastmaxDropout.LinearTerm, true)]
    [InlineData(FastmaxNormalization.SquaredNorm, FastmaxAlgorithm.Factorized, false, FastmaxDropout.LinearTerm, false)]
    [InlineData(FastmaxNormalization.None, FastmaxAlgorithm.Factorized, false, FastmaxDropout.LinearTerm, false)]
    [InlineData(FastmaxNormalization.MeanCentered, FastmaxAlgorithm.Quadratic, false, FastmaxDropout.LinearTerm, false)]
    [InlineData(FastmaxNormalization.MeanCentered, FastmaxAlgorithm.Factorized, true, FastmaxDropout.LinearTerm, false)]
    [InlineData(FastmaxNormalization.MeanCentered, FastmaxAlgorithm.Factorized, true, FastmaxDropout.QuadraticTerm, false)]
    [InlineData(FastmaxNormalization.MeanCentered, FastmaxAlgorithm.Factorized, true, FastmaxDropout.OutputNoise, true)]
    public void Joins_max_norms_with_nothing_between(FastmaxNormalization normalization, FastmaxAlgorithm algorithm, bool regularize, FastmaxDropout dropout, bool joins)
    {
        var options = new FastmaxOptions { Normalization = normalization, Dropout = dropout, DropoutRate = 0.1 };
        Assert.Equal(joins, FastmaxDispatch.JoinsNormalization(options, algorithm, regularize));
    }
}
