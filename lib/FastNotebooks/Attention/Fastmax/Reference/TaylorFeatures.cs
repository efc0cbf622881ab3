using System.Collections.Concurrent;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax.Reference;

/// <summary>
/// Symmetric polynomial feature maps with φ_q(x)·φ_k(y) = Σ_l c_l (x·y)^l.
/// Degree l contributes one feature per multiset {m_1 ≤ … ≤ m_l} of coordinates (D(D+1)/2 for l = 2
/// instead of D²): (x·y)^l = Σ_multisets multinomial(counts) · Π x_m · Π y_m. The query side carries
/// c_l times the multinomial weight, the key side the bare monomial.
/// </summary>
public static class TaylorFeatures
{
    sealed record Monomials(long[][] Factors, double[] Multinomial);

    static readonly ConcurrentDictionary<(int D, int Degree), Monomials> Cache = new();

    /// <summary>Number of features for degrees 0..order over D coordinates.</summary>
    public static long Size(long d, int order)
    {
        long size = 0, count = 1; // count = C(d + l − 1, l)
        for (int l = 0; l <= order; l++)
        {
            if (l > 0) count = count * (d + l - 1) / l;
            size += count;
        }
        return size;
    }

    /// <summary>Query-side features [..., F]: degree l scaled by coefficients[l] and the multinomial weight.</summary>
    public static Tensor Query(Tensor x, IReadOnlyList<double> coefficients) => Build(x, coefficients);

    /// <summary>Key-side features [..., F] up to <paramref name="order"/>: bare monomials.</summary>
    public static Tensor Key(Tensor x, int order) => Build(x, null, order);

    static Tensor Build(Tensor x, IReadOnlyList<double>? coefficients, int order = -1)
    {
        if (coefficients != null) order = coefficients.Count - 1;
        int d = (int)x.size(-1);
        var parts = new List<Tensor>(order + 1);
        using var scope = NewDisposeScope();
        for (int l = 0; l <= order; l++)
        {
            Tensor part;
            if (l == 0) part = ones_like(x.narrow(-1, 0, 1));
            else if (l == 1) part = x;
            else
            {
                var monomials = Cache.GetOrAdd((d, l), key => Enumerate(key.D, key.Degree));
                part = x.index_select(-1, tensor(monomials.Factors[0], device: x.device));
                for (int r = 1; r < l; r++)
                    part = part * x.index_select(-1, tensor(monomials.Factors[r], device: x.device));
                if (coefficients != null)
                    part = part * tensor(monomials.Multinomial, dtype: x.dtype, device: x.device);
            }
            if (coefficients != null) part = part * coefficients[l];
            parts.Add(part);
        }
        return cat(parts, -1).MoveToOuterDisposeScope();
    }

    /// <summary>All multisets of <paramref name="degree"/> coordinates in lexicographic order, with weights l!/Π count!.</summary>
    static Monomials Enumerate(int d, int degree)
    {
        var factors = Enumerable.Range(0, degree).Select(_ => new List<long>()).ToArray();
        var weights = new List<double>();
        var current = new int[degree];
        void Recurse(int position, int start)
        {
            if (position == degree)
            {
                for (int r = 0; r < degree; r++) factors[r].Add(current[r]);
                weights.Add(MultinomialWeight(current));
                return;
            }
            for (int m = start; m < d; m++)
            {
                current[position] = m;
                Recurse(position + 1, m);
            }
        }
        Recurse(0, 0);
        return new Monomials(factors.Select(f => f.ToArray()).ToArray(), weights.ToArray());
    }

    static double MultinomialWeight(int[] sortedIndices)
    {
        double weight = Factorial(sortedIndices.Length);
        foreach (var run in sortedIndices.GroupBy(i => i)) weight /= Factorial(run.Count());
        return weight;
    }

    static double Factorial(int n) => n <= 1 ? 1 : n * Factorial(n - 1);

    /// <summary>f(s) = Σ_l c_l s^l by Horner's rule, elementwise.</summary>
    public static Tensor Polynomial(Tensor s, IReadOnlyList<double> coefficients)
    {
        if (coefficients.Count == 1) return full_like(s, coefficients[0]);
        var result = s * coefficients[^1];                  // in place from here: one buffer for the whole recursion
        result.add_(coefficients[^2]);
        for (int l = coefficients.Count - 3; l >= 0; l--)
            result.mul_(s).add_(coefficients[l]);
        return result;
    }

    /// <summary>Coefficients of f′: (l + 1)·c_{l+1}, l = 0..p−1.</summary>
    public static double[] Derivative(IReadOnlyList<double> coefficients) =>
        Enumerable.Range(1, coefficients.Count - 1).Select(l => l * coefficients[l]).ToArray();

    /// <summary>Row-wise outer product [..., n, A] ⊗ [..., n, E] → [..., n, A·E].</summary>
    public static Tensor RowOuter(Tensor a, Tensor e)
    {
        var shape = a.Shape().ToArray();
        shape[^1] = a.size(-1) * e.size(-1);
        using var outer = a.unsqueeze(-1) * e.unsqueeze(-2); // [..., n, A, E]
        return outer.reshape(shape);
    }

    /// <summary>[..., n, E] → [..., n, E + 1] with a trailing column of ones (denominator rides along in the same matmul).</summary>
    public static Tensor AppendOnes(Tensor x)
    {
        using var one = ones_like(x.narrow(-1, 0, 1));
        return cat(new[] { x, one }, -1);
    }
}
