namespace FastNotebooks.Bench;

/// <summary>One attention configuration to time: sequence length, head size, order, mask, batch·heads.</summary>
public sealed record BenchCase(int N, int D, int Order, bool Causal, int Batch = 1, int Heads = 1)
{
    public int Dv => D;
    public int BatchHeads => Batch * Heads;
    public override string ToString() => $"N={N} D={D} p={Order}{(Causal ? " causal" : "")}{(BatchHeads > 1 ? $" B·H={BatchHeads}" : "")}";
}

/// <summary>Sizes per profile; both profiles cover every target of the performance issue, --full adds points and repeats.</summary>
public sealed record BenchProfile(string Name, int Repeats, BenchCase[] Cases, int SoftmaxMaxN, int DenseMaxN)
{
    /// <summary>Under two minutes on two cores: one or two points per target, seven repeats.</summary>
    public static BenchProfile Quick => new("quick", 7, new[]
    {
        new BenchCase(1024, 32, 2, false), new BenchCase(4096, 32, 2, false), new BenchCase(16384, 32, 2, false),
        new BenchCase(1024, 64, 2, false), new BenchCase(4096, 64, 2, false),
        new BenchCase(4096, 32, 2, true), new BenchCase(16384, 32, 2, true), new BenchCase(65536, 32, 2, true),
        new BenchCase(4096, 32, 1, false), new BenchCase(16384, 32, 1, false), new BenchCase(4096, 32, 1, true),
        new BenchCase(4096, 32, 2, false, 4, 8),
    }, SoftmaxMaxN: 16384, DenseMaxN: 1024);

    /// <summary>The crossover sweep and larger sizes, five repeats.</summary>
    public static BenchProfile Full => new("full", 5, new[]
    {
        new BenchCase(256, 32, 2, false), new BenchCase(512, 32, 2, false), new BenchCase(1024, 32, 2, false),
        new BenchCase(2048, 32, 2, false), new BenchCase(4096, 32, 2, false), new BenchCase(8192, 32, 2, false),
        new BenchCase(16384, 32, 2, false), new BenchCase(65536, 32, 2, false),
        new BenchCase(1024, 64, 2, false), new BenchCase(2048, 64, 2, false), new BenchCase(4096, 64, 2, false),
        new BenchCase(8192, 64, 2, false), new BenchCase(16384, 64, 2, false),
        new BenchCase(1024, 32, 2, true), new BenchCase(4096, 32, 2, true), new BenchCase(16384, 32, 2, true),
        new BenchCase(65536, 32, 2, true), new BenchCase(4096, 64, 2, true),
        new BenchCase(1024, 32, 1, false), new BenchCase(4096, 32, 1, false), new BenchCase(16384, 32, 1, false),
        new BenchCase(4096, 32, 1, true), new BenchCase(16384, 32, 1, true), new BenchCase(4096, 64, 1, false),
        new BenchCase(4096, 32, 2, false, 4, 8), new BenchCase(4096, 32, 2, true, 4, 8), new BenchCase(4096, 32, 1, false, 4, 8),
    }, SoftmaxMaxN: 16384, DenseMaxN: 2048);
}
