using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fma;

/// <summary>
/// Learned coarse keys or values: for each level l, [B, H, n, d] → [B, H, n/w, p, d] with w = m·2^l. Each level
/// downsamples the fine tokens directly (not the previous level), as in the paper.
/// </summary>
public sealed class FmaDownsampler : nn.Module<Tensor, int, Tensor>
{
    readonly FmaOptions _options;
    readonly ModuleList<Conv1d> levels = new();

    public FmaDownsampler(string name, FmaOptions options) : base(name)
    {
        _options = options;
        int d = options.HeadDim, p = options.Rank;
        if (options.Downsampling != FmaDownsampling.AveragePooling)
            for (int l = 0; l < FmaLayout.LevelsFor(options.MaxLength, options.BlockSize); l++)
            {
                long w = (long)options.BlockSize << l;
                levels.Add(nn.Conv1d(d, p * d, w, stride: w, groups: options.Downsampling == FmaDownsampling.DepthwiseConvolution ? d : 1));
            }
        RegisterComponents();
    }

    /// <summary>Coarse tokens of <paramref name="level"/> for x [B, H, n, d]: [B, H, n/w, p, d].</summary>
    public override Tensor forward(Tensor x, int level)
    {
        using var scope = NewDisposeScope();
        long b = x.size(0), h = x.size(1), n = x.size(2), d = x.size(3);
        int p = _options.Rank;
        long w = (long)_options.BlockSize << level, groups = n / w;
        var channels = x.reshape(b * h, n, d).transpose(1, 2);                          // [BH, d, n]
        Tensor coarse = _options.Downsampling switch
        {
            FmaDownsampling.AveragePooling => nn.functional.avg_pool1d(channels, w / p, w / p)
                .view(b * h, d, groups, p).permute(0, 2, 3, 1),                          // [BH, G, p, d]
            FmaDownsampling.Convolution => levels[level].forward(channels)
                .view(b * h, p, d, groups).permute(0, 3, 1, 2),
            _ => levels[level].forward(channels)                                         // depthwise: channel = e·p + r
                .view(b * h, d, p, groups).permute(0, 3, 2, 1),
        };
        return coarse.reshape(b, h, groups, p, d).MoveToOuterDisposeScope();
    }
}
