using static TorchSharp.torch;

namespace FastNotebooks.Verification;

/// <summary>Central finite differences: the derivative-free check of a gradient, one input entry at a time.</summary>
public static class FiniteDifferences
{
    /// <summary>
    /// ∂loss/∂inputs[which] by (loss(x + h·e) − loss(x − h·e)) / 2h for every entry e. Cost: two loss evaluations per entry,
    /// so keep inputs small. Use float64: the truncation error is O(h²), the rounding error O(ε/h).
    /// </summary>
    /// <param name="loss">A scalar function of the inputs.</param>
    /// <param name="inputs">The point; left unchanged.</param>
    /// <param name="which">Index of the input to differentiate.</param>
    /// <param name="step">The step h (default 1e-6).</param>
    public static Tensor Gradient(Func<Tensor[], Tensor> loss, Tensor[] inputs, int which, double step = 1e-6)
    {
        if (which < 0 || which >= inputs.Length)
            throw new ArgumentOutOfRangeException(nameof(which), which, $"there are {inputs.Length} inputs.");
        var gradient = zeros_like(inputs[which]);
        var flat = gradient.view(-1);
        using var noGrad = no_grad();
        for (long e = 0; e < flat.shape[0]; e++)
        {
            using var scope = NewDisposeScope();
            var plus = inputs.Select(t => t.detach().clone()).ToArray();
            var minus = inputs.Select(t => t.detach().clone()).ToArray();
            plus[which].view(-1)[e] += step;
            minus[which].view(-1)[e] -= step;
            flat[e] = (loss(plus) - loss(minus)) / (2 * step);
        }
        return gradient;
    }
}
