namespace FastNotebooks.Bench;

/// <summary>One target of the performance issue with the value measured in this run.</summary>
public sealed record TargetResult(string Target, string Measured, bool Met);

/// <summary>Evaluates the issue's targets on the rows of one run (only those whose cases the profile contains).</summary>
public static class Targets
{
    public static List<TargetResult> Evaluate(IReadOnlyList<BenchRow> rows)
    {
        var results = new List<TargetResult>();
        var fastmax = rows.Where(r => r.Implementation == "fastmax").ToList();
        BenchRow? Find(int n, int d, int p, bool causal, int bh = 1) =>
            fastmax.FirstOrDefault(r => r.N == n && r.D == d && r.Order == p && r.Causal == causal && r.BatchHeads == bh);

        foreach (int p in new[] { 2, 1 })
        {
            foreach (var r in fastmax.Where(r => r.Order == p && !r.Causal && r.N >= 4096 && r.D is 32 or 64))
                results.Add(new($"p={p} unmasked fwd N={r.N} D={r.D}{(r.BatchHeads > 1 ? $" B·H={r.BatchHeads}" : "")} ≥ 60 % of GEMM",
                    $"{100 * r.FractionOfGemm:F0} % ({r.Gflops:F1} GFLOP/s)", r.FractionOfGemm >= 0.6));
            if (Find(16384, 32, p, false) is { SpeedupOverSoftmax: double s16 })
                results.Add(new($"p={p} ≥ 15× SDPA at N=16384 D=32", $"{s16:F1}×", s16 >= 15));
            foreach (var (n, d) in new[] { (1024, 32), (4096, 64) })
                if (Find(n, d, p, false) is { SpeedupOverSoftmax: double s })
                    results.Add(new($"p={p} faster than SDPA at N={n} D={d}", $"{s:F2}×", s > 1));
            foreach (var causal in fastmax.Where(r => r.Order == p && r.Causal && r.N <= 16384))
                if (Find(causal.N, causal.D, p, false, causal.BatchHeads) is { } unmasked)
                {
                    double ratio = causal.ForwardMs / unmasked.ForwardMs;
                    results.Add(new($"p={p} causal fwd ≤ 3× unmasked at N={causal.N} D={causal.D}", $"{ratio:F2}×", ratio <= 3));
                }
            foreach (var r in fastmax.Where(r => r.Order == p && r.ForwardBackwardMs is not null))
            {
                double ratio = r.ForwardBackwardMs!.Value / r.ForwardMs;
                results.Add(new($"p={p} fwd+bwd ≤ 3× fwd at N={r.N} D={r.D}{(r.Causal ? " causal" : "")}{(r.BatchHeads > 1 ? $" B·H={r.BatchHeads}" : "")}",
                    $"{ratio:F2}×", ratio <= 3));
            }
        }
        if (Find(65536, 32, 2, true) is { } big)
            results.Add(new("causal N=65536 D=32 completes with peak RSS growth < 2 GB",
                $"{big.ForwardMs / 1000:F2} s, +{big.PeakGrowthMb:F0} MB", big.PeakGrowthMb is < 2048));
        return results;
    }
}
