using FastNotebooks.Attention.Fastmax.Cpu;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FastNotebooks.Models;

/// <summary>
/// A Linear layer's x·Wᵀ + b on the AVX-512 register tiles of the Fastmax kernels (<see cref="SimdGemm"/>) where they apply:
/// float32 CPU inputs of at least <see cref="MinimumRows"/> rows and a layer with a bias. libtorch's bundled oneMKL runs the
/// models' thin products (thousands of rows by 128 to 512 columns) at well under half the tiles' rate on the AMD EPYC machines
/// this project runs on (PERF.md, "The models' linear layers on the tiles"), so every model's training step spent most of its
/// time outside attention in them. Elsewhere (float64, no AVX-512, other devices, a few rows as in decoding) the layer's own
/// forward runs. The layer keeps its parameters, their names and their initialization: only where the products run changes.
/// </summary>
public static class TiledLinear
{
    /// <summary>Fewer rows (tokens over the batch) than this run on the layer's own forward, where the call's fixed costs dominate.</summary>
    public const int MinimumRows = 64;

    /// <summary>y = x·Wᵀ + b for x [..., in]: [..., out], differentiable in x, W and b.</summary>
    public static Tensor Apply(Linear layer, Tensor x)
    {
        if (!Applies(layer, x)) return layer.forward(x);
        var (weight, bias) = (layer.weight!, layer.bias!);
        if (is_grad_enabled() && (x.requires_grad || weight.requires_grad || bias.requires_grad))
            return TiledLinearFunction.Apply(x, weight, bias);
        return Forward(x, weight, bias);
    }

    /// <summary>Whether <see cref="Apply"/> runs the tiles for this layer and input.</summary>
    public static bool Applies(Linear layer, Tensor x) =>
        SimdGemm.Available && layer.weight is { } w && layer.bias is not null && w.dtype == ScalarType.Float32 && w.device_type == DeviceType.CPU
        && x.dtype == ScalarType.Float32 && x.device_type == DeviceType.CPU && x.dim() >= 2 && x.size(-1) == w.size(1)
        && x.numel() / Math.Max(1, x.size(-1)) >= MinimumRows;

    /// <summary>x·Wᵀ + b without a graph: the rows of x [M, in] against Wᵀ copied to [in, out] (the tiles take their right operand with unit-stride rows).</summary>
    internal static Tensor Forward(Tensor x, Tensor weight, Tensor bias)
    {
        using var scope = NewDisposeScope();
        using var noGraph = no_grad();
        long inputs = weight.size(1), outputs = weight.size(0);
        var rows = x.reshape(-1, inputs);
        var y = SimdGemm.MatMul(rows, weight.t().contiguous()).add_(bias);
        var shape = x.Shape().ToArray();
        shape[^1] = outputs;
        return y.view(shape).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The autograd node of <see cref="TiledLinear"/>: saves x and W; the backward's products dx = dy·W and dW = dyᵀ·x run on the tiles
/// too, dW as (xᵀ·dy)ᵀ when W has more inputs than outputs (the tiles are faster with the narrower product as their columns).
/// </summary>
internal sealed class TiledLinearFunction : autograd.SingleTensorFunction<TiledLinearFunction>
{
    public override string Name => "TiledLinear";

    public static Tensor Apply(Tensor x, Tensor weight, Tensor bias) => apply(x, weight, bias);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (x, weight, bias) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2]);
        ctx.save_for_backward(new List<Tensor> { x, weight });
        return TiledLinear.Forward(x, weight, bias);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var (x, weight) = (saved[0], saved[1]);
        using var scope = NewDisposeScope();
        using var noGraph = no_grad();
        long inputs = weight.size(1), outputs = weight.size(0);
        var rows = x.reshape(-1, inputs);
        var dy = gradOutput.reshape(-1, outputs).contiguous();
        var dx = SimdGemm.MatMul(dy, weight.contiguous()).view(x.Shape());
        var dw = inputs <= outputs ? SimdGemm.MatMul(dy.t(), rows) : SimdGemm.MatMul(rows.t(), dy).t().contiguous();
        var db = dy.sum(new long[] { 0 });   // over the rows (a literal 0 alone would bind to sum(ScalarType))
        return new List<Tensor> { dx.MoveToOuterDisposeScope(), dw.MoveToOuterDisposeScope(), db.MoveToOuterDisposeScope() };
    }
}
