using static TorchSharp.torch;

namespace FastNotebooks.Models.Decoding;

/// <summary>
/// What a <see cref="CharLanguageModel"/> carries between decoding steps for B sequences: one <see cref="IAttentionCache"/>
/// per block and the next position. Made by <see cref="CharLanguageModel.Prefill"/>, advanced by <see cref="CharLanguageModel.Step"/>;
/// it belongs to the model (and dtype) that made it.
/// </summary>
public sealed class DecodingState : IDisposable
{
    internal DecodingState(CharLanguageModel model, ScalarType dtype, long batch, IAttentionCache[] layers, long position)
    {
        Model = model;
        DType = dtype;
        Batch = batch;
        Layers = layers;
        Position = position;
    }

    internal CharLanguageModel Model { get; }

    /// <summary>The model's floating-point type when the state was made.</summary>
    public ScalarType DType { get; }

    /// <summary>Sequences decoded together.</summary>
    public long Batch { get; }

    /// <summary>One cache per block.</summary>
    public IReadOnlyList<IAttentionCache> Layers { get; }

    /// <summary>Tokens seen so far: the position of the next token.</summary>
    public long Position { get; internal set; }

    /// <summary>Bytes of state per sequence, all blocks together.</summary>
    public long BytesPerSequence => Layers.Sum(l => l.Bytes) / Batch;

    public void Dispose()
    {
        foreach (var layer in Layers) layer.Dispose();
    }
}
