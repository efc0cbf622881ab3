// Demo: Fastmax against its dense reference and against softmax, on one random problem.
using System.Diagnostics;
using FastNotebooks.Attention.Fastmax;
using FastNotebooks.Attention.Softmax;
using FastNotebooks.Verification;
using FastNotebooks.Attention.Fastmax.Reference;
using static TorchSharp.torch;

manual_seed(0);
Console.WriteLine("Fastmax (arXiv 2402.07901): factorized kernel vs dense N×N reference, float64");
foreach (var causal in new[] { false, true })
foreach (var order in new[] { 1, 2, 3 })
{
    using var scope = NewDisposeScope();
    var (q, k, v) = (randn(2, 4, 257, 16, dtype: ScalarType.Float64), randn(2, 4, 257, 16, dtype: ScalarType.Float64), randn(2, 4, 257, 16, dtype: ScalarType.Float64));
    var options = new FastmaxOptions { Order = order, Causal = causal };
    Console.WriteLine("  p={0} causal={1,-5}  {2}", order, causal,
        ErrorReport.Of("o", FastmaxFunctional.Attention(q, k, v, options), FastmaxDense.Attention(q, k, v, options)));
}

Console.WriteLine("\nLargest relative errors over the verification grid (N 1..257, D 1..24, p 1..3, scales 1e-3..1e3):");
var sweep = KernelErrorSweep.Run().ToList();
foreach (var group in sweep.GroupBy(e => e.Dtype))
    Console.WriteLine("  {0,-8} output {1:E2}  dq {2:E2}  dk {3:E2}  dv {4:E2}  ({5} configurations)", group.Key,
        group.Max(e => e.Output), MaxFinite(group.Select(e => e.GradQ)), MaxFinite(group.Select(e => e.GradK)), MaxFinite(group.Select(e => e.GradV)), group.Count());

Console.WriteLine("\nTime per call, float32, B=1 H=1 D=32 (one run, this machine):");
Console.WriteLine("  {0,6} {1,12} {2,12}", "N", "fastmax2 ms", "softmax ms");
foreach (var n in new[] { 1024, 4096, 16384 })
{
    using var scope = NewDisposeScope();
    var (q, k, v) = (randn(1, 1, n, 32), randn(1, 1, n, 32), randn(1, 1, n, 32));
    double Time(Func<Tensor> f) { f(); var w = Stopwatch.StartNew(); for (int i = 0; i < 3; i++) f(); return w.Elapsed.TotalMilliseconds / 3; }
    Console.WriteLine("  {0,6} {1,12:F1} {2,12:F1}", n, Time(() => FastmaxFunctional.Attention(q, k, v)), Time(() => SoftmaxAttention.Attention(q, k, v)));
}

static double MaxFinite(IEnumerable<double> values) => values.Where(double.IsFinite).Max();
