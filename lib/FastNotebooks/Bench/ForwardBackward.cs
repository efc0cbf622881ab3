using static TorchSharp.torch;

namespace FastNotebooks.Bench;

/// <summary>
/// How the bench times forward + backward of an attention call: the forward with a graph, then the gradients of q, k and v for a
/// fixed dL/do (autograd given that output gradient), as attention benchmarks time a backward. No loss is formed, so no multiply,
/// sum or their gradients are timed with the attention (they were, before 2026-12-03: PERF.md, "Forward + backward without a loss").
/// </summary>
public static class ForwardBackward
{
    /// <summary>One forward + backward of <paramref name="attention"/> on q, k, v that require gradients, for dL/do = <paramref name="outputGradient"/>.</summary>
    public static void Run(Func<Tensor, Tensor, Tensor, Tensor> attention, Tensor[] leaves, Tensor outputGradient)
    {
        foreach (var gradient in Gradients(attention, leaves, outputGradient)) gradient.Dispose();
    }

    /// <summary>dL/dq, dL/dk, dL/dv of that call: those of the loss Σ o ⊙ dL/do (ForwardBackwardTests).</summary>
    public static Tensor[] Gradients(Func<Tensor, Tensor, Tensor, Tensor> attention, Tensor[] leaves, Tensor outputGradient)
    {
        if (leaves.Length != 3) throw new ArgumentException($"forward + backward takes q, k and v; got {leaves.Length} tensors", nameof(leaves));
        using var step = NewDisposeScope();
        var output = attention(leaves[0], leaves[1], leaves[2]);
        if (!output.Shape().SequenceEqual(outputGradient.Shape()))
            throw new ArgumentException($"dL/do must have the output's shape [{string.Join(", ", output.Shape())}]; got [{string.Join(", ", outputGradient.Shape())}]", nameof(outputGradient));
        return autograd.grad(new[] { output }, leaves, new[] { outputGradient }).Select(g => g.MoveToOuterDisposeScope()).ToArray();
    }
}
