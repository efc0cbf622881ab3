using FastNotebooks.Attention.Fastmax.Cpu;
using FastNotebooks.Attention.Fastmax.Reference;
using FastNotebooks.Attention.Fastmax.TensorOps;
using TorchSharp;
using static TorchSharp.torch;

namespace FastNotebooks.Attention.Fastmax;

/// <summary>
/// Which implementation computes Fastmax (<see cref="FastmaxOptions.Backend"/>). All compute the same function up to
/// rounding; they differ in what they run on and how readable they are (README.md beside this file, "Where each step lives").
/// </summary>
public enum FastmaxBackend
{
    /// <summary><see cref="Cpu"/> for CPU tensors, <see cref="TensorOps"/> elsewhere. The default.</summary>
    Auto,
    /// <summary>
    /// The readable forms in <c>Reference/</c>: gathered Taylor features, one state per chunk, tensor ops only (any order,
    /// device and dtype; several times slower). The normalization is the same autograd node as on the other backends.
    /// </summary>
    Reference,
    /// <summary>The factorized algorithm (<c>TensorOps/</c>) in libtorch ops only: any device and dtype.</summary>
    TensorOps,
    /// <summary>
    /// The factorized algorithm with its CPU kernels (<c>Cpu/</c>): per-token loops in float32 and float64, AVX-512 register
    /// tiles in float32 where the processor has AVX-512; each piece a kernel does not support runs as libtorch ops. CPU tensors only.
    /// </summary>
    Cpu,
}

/// <summary>
/// What one call may run, fixed by <see cref="FastmaxDispatch"/> from the options: the CPU kernels or libtorch ops only,
/// the working-set budget, and whether the causal forward keeps its key states for the backward. Each operation that has a
/// CPU kernel is chosen here, by that kernel's one <c>Supports</c> predicate; the tensor-op form is the fallback and the
/// reference the tests compare it with.
/// </summary>
public sealed class KernelPlan
{
    /// <summary>
    /// Working-set target of one chunk of heads and tokens, in feature elements over all batches and heads (2^22: 16 MiB in
    /// float32; about 7500 tokens of one head at D = 32). The unmasked path uses chunks of at least the caller's chunk and at
    /// most this many feature elements; the causal path batches that many chunks' states; heads beyond it run in groups.
    /// Smaller budgets split the work finer: the tests use them to reach the chunk and head splits with small inputs.
    /// </summary>
    public const long DefaultFeatureChunkElements = 1L << 22;

    /// <summary>libtorch ops only.</summary>
    public static readonly KernelPlan TensorOps = new(false, DefaultFeatureChunkElements);

    /// <summary>The CPU kernels wherever they support the operands.</summary>
    public static readonly KernelPlan Cpu = new(true, DefaultFeatureChunkElements);

    internal KernelPlan(bool cpuKernels, long featureChunkElements, StageClock? clock = null, bool keepsCausalStates = true)
    {
        if (featureChunkElements < 1)
            throw new ArgumentOutOfRangeException(nameof(featureChunkElements), featureChunkElements, "the feature-chunk budget must be at least 1 element");
        CpuKernels = cpuKernels;
        FeatureChunkElements = featureChunkElements;
        Clock = clock;
        KeepsCausalStates = keepsCausalStates;
    }

    /// <summary>Whether the CPU kernels may run (else libtorch ops only).</summary>
    public bool CpuKernels { get; }

    /// <summary>See <see cref="DefaultFeatureChunkElements"/>.</summary>
    public long FeatureChunkElements { get; }

    /// <summary>The clock that times each piece this plan runs (<see cref="StageClock"/>); null for none, the default.</summary>
    public StageClock? Clock { get; }

    /// <summary>
    /// Whether the causal forward keeps the state before each chunk where a backward follows (<see cref="FastmaxOptions.KeepCausalStates"/>,
    /// <see cref="FastmaxDispatch.Forward"/>); else the backward makes them again.
    /// </summary>
    public bool KeepsCausalStates { get; }

    /// <summary>This plan with another working-set budget.</summary>
    public KernelPlan WithFeatureChunkElements(long elements) => new(CpuKernels, elements, Clock, KeepsCausalStates);

    /// <summary>This plan keeping the causal key states for the backward or not (<see cref="KeepsCausalStates"/>).</summary>
    public KernelPlan WithCausalStates(bool keep) => new(CpuKernels, FeatureChunkElements, Clock, keep);

    /// <summary>This plan timing its pieces on <paramref name="clock"/> (null: untimed). The same kernels run either way.</summary>
    public KernelPlan WithClock(StageClock? clock) => new(CpuKernels, FeatureChunkElements, clock, KeepsCausalStates);

    /// <summary>The stage names a <see cref="StageClock"/> records for this plan's pieces.</summary>
    public static class Stages
    {
        public const string Gemm = "GEMM (chunk blocks)";
        public const string Features = "features φ(x̃)";
        public const string Project = "projection φ·W";
        public const string State = "state uᵀ·φ";
        public const string Gradient = "gradient ∇(φ·W)";
        public const string RunningStates = "running states";
        public const string MaskedPolynomial = "masked polynomial";
        public const string ScaledOutputGradients = "scaled output gradients";
        public const string Inputs = "inputs: [x, 1, x, 1], [v, 1] where copied";
        public const string Output = "output o = numerator / g";
    }

    /// <summary>Times a piece of the algorithm that is not one of the plan's operations (no flops counted); null without a clock.</summary>
    internal StageClock.Scope? Time(string stage) => Clock?.Time(stage, 0);

    /// <summary>Tokens (rows) of x [..., n, ·].</summary>
    static double Rows(Tensor x) => x.size(-1) == 0 ? 0 : (double)x.numel() / x.size(-1);

    public override string ToString() =>
        $"{(CpuKernels ? "cpu" : "tensor-ops")} (budget {FeatureChunkElements} feature elements{(KeepsCausalStates ? "" : ", causal states made again")})";

    /// <summary>
    /// a·b: <see cref="SimdGemm"/> (which itself hands what its tiles do not support to libtorch), or <c>matmul</c>. With a
    /// <paramref name="triangle"/> the tiles skip what the causal blocks do not need (<see cref="SimdGemm.Triangle"/>); libtorch
    /// computes the whole product, which has the same entries where they are needed.
    /// </summary>
    internal Tensor MatMul(Tensor a, Tensor b, SimdGemm.Triangle triangle = SimdGemm.Triangle.None, Tensor? into = null)
    {
        using var _ = Clock?.Time(Stages.Gemm, 2 * Math.Max(Rows(a), Rows(b) / b.size(-2) * a.size(-2)) * a.size(-1) * b.size(-1));
        return CpuKernels ? SimdGemm.MatMul(a, b, triangle, into) : SimdGemm.ByLibtorch(a, b, into);
    }

    /// <summary>x [..., n, w] as a contiguous [..., w, n] (a GEMM's B operand): <see cref="RegisterTranspose.Transposed"/>, or libtorch's copy.</summary>
    internal Tensor Transposed(Tensor x) =>
        CpuKernels ? RegisterTranspose.Transposed(x) : x.transpose(-1, -2).contiguous();

    /// <summary>Bare packed features φ(x̃) of an extended chunk.</summary>
    internal Tensor Build(PackedTaylorFeatures features, Tensor extended)
    {
        using var _ = Clock?.Time(Stages.Features, 0);
        using var fromRaw = features.ExtendedIfRaw(extended);
        extended = fromRaw ?? extended;
        return features.Order == 1 ? extended.contiguous()
            : CpuKernels && PackedFeatureLoops.Supports(features, extended) ? PackedFeatureLoops.Build(extended, features.Extended, features.Rows)
            : features.BuildByBroadcast(extended);
    }

    /// <summary>φ(x̃)·W without storing the features (<see cref="TokenColumns"/>), or features and a GEMM.</summary>
    /// <remarks>
    /// With <paramref name="addTo"/> [..., n, C], the product is added to it, which is returned: by the kernel as it writes
    /// each strip where it can (<see cref="TokenColumns.AddsTo"/>), else after (the same bits: one addition an element).
    /// </remarks>
    internal Tensor Project(PackedTaylorFeatures features, Tensor extended, Tensor weightedState, Tensor? addTo = null)
    {
        using var _ = Clock?.Time(Stages.Project, 2 * Rows(extended) * features.Size * weightedState.size(-1));
        if (CpuKernels && TokenColumns.Supports(features, extended, weightedState, null) && (addTo is null || TokenColumns.AddsTo(addTo, ProductShape(extended, weightedState.size(-1)))))
            return TokenColumns.Project(extended, weightedState, features.D, features.Rows, CentresIn(features, extended), addTo);
        using var phi = Build(features, extended);
        if (addTo is null) return MatMul(phi, weightedState);
        using var product = MatMul(phi, weightedState);
        return addTo.AddInPlace(product);
    }

    /// <summary>The shape [..., n, width] of a per-token product of x [..., n, ·].</summary>
    static long[] ProductShape(Tensor x, long width)
    {
        var shape = x.Shape().ToArray();
        shape[^1] = width;
        return shape;
    }

    /// <summary>
    /// o = (φ·W)[..., :Dv] / g and g = (φ·W)[..., Dv] for a state W [..., F, Dv + 1] whose last column sums [v, 1]: the division
    /// fused into <see cref="TokenColumns.ProjectAndDivide"/>, or <see cref="Project"/> and then the division (its reference).
    /// </summary>
    internal (Tensor Output, Tensor Denominator) ProjectAndDivide(PackedTaylorFeatures features, Tensor extended, Tensor weightedState)
    {
        long dv = weightedState.size(-1) - 1;
        if (CpuKernels && TokenColumns.Supports(features, extended, weightedState, null))
        {
            using var _ = Clock?.Time(Stages.Project, 2 * Rows(extended) * features.Size * weightedState.size(-1));
            return TokenColumns.ProjectAndDivide(extended, weightedState, features.D, features.Rows, CentresIn(features, extended));
        }
        using var product = Project(features, extended, weightedState);
        return Divide(product, dv);
    }

    /// <summary>o = numerator / g and a contiguous g from rows [..., n, Dv + 1] of [numerator, g] (timed as the output stage).</summary>
    internal (Tensor Output, Tensor Denominator) Divide(Tensor numeratorAndDenominator, long dv)
    {
        using var _ = Time(Stages.Output);
        var (o, g) = FastmaxFactorized.OutputAndDenominator(numeratorAndDenominator, dv);
        return (o, g.contiguous());
    }

    /// <summary>
    /// o and g from two parts of the rows [numerator, g] (the causal kernel's in-chunk block and its projection of the state before
    /// the chunk, [B, H, G, c, Dv + 1] each), written into o [B, H, G·c, Dv] and g [B, H, G·c] (timed as the output stage): one pass
    /// (<see cref="TokenLoops.AddThenDivideRows"/>), or the sum, then the copies and the division (its reference).
    /// </summary>
    internal void AddThenDivide(Tensor within, Tensor projected, Tensor o, Tensor g)
    {
        using var _ = Time(Stages.Output);
        if (CpuKernels && TokenLoops.SupportsAddThenDivideRows(within, projected, o, g))
        {
            TokenLoops.AddThenDivideRows(within, projected, o, g);
            return;
        }
        using var scope = NewDisposeScope();
        var rows = (within + projected).flatten(2, 3);                                 // [B, H, G·c, Dv + 1]
        long dv = o.size(-1);
        g.copy_(rows.select(-1, dv));
        o.copy_(rows.narrow(-1, 0, dv)).div_(g.unsqueeze(-1));
    }

    /// <summary>
    /// Whether <see cref="Project"/> (and <see cref="Gradient"/>, given <paramref name="u"/>) runs on <see cref="TokenColumns"/>,
    /// which builds no features: then all tokens go in one call, without joining chunks.
    /// </summary>
    internal bool ProjectsInCache(PackedTaylorFeatures features, Tensor extended, Tensor weightedState, Tensor? u = null, bool appendOne = false) =>
        CpuKernels && TokenColumns.Supports(features, extended, weightedState, u, appendOne);

    /// <summary>Whether the pieces centre x per token as they build x̃ (<see cref="PackedTaylorFeatures.CentresRawInputs"/>, raw x only).</summary>
    static bool CentresIn(PackedTaylorFeatures features, Tensor x) => features.CentresRawInputs && features.IsRaw(x);

    /// <summary>
    /// Whether the pieces may get x [..., n, D] rather than the extended [x̃, x̃] (<see cref="PackedTaylorFeatures.KernelInput"/>):
    /// order 2 on the CPU kernels, whose state product (<see cref="StatePanels"/>, D̃ ≥ 32) and token-column products build x̃ in cache.
    /// </summary>
    internal bool TakesRawInputs(PackedTaylorFeatures features, Tensor x) =>
        CpuKernels && features.Order == 2 && StatePanels.Supports(features.D) && TokenColumns.SupportsFused(features, x);

    /// <summary>Whether <see cref="StateTransposed"/> builds the features block by block in cache (then any number of tokens per call is cheap).</summary>
    internal bool StatesInCache(PackedTaylorFeatures features, Tensor extended, Tensor u) =>
        CpuKernels && FeatureStates.Supports(features, extended, u);

    /// <summary>uᵀ·φ(x̃) [..., C, F]: <see cref="FeatureStates"/>, or features and a GEMM.</summary>
    /// <remarks>
    /// With <paramref name="appendOne"/>, u [..., n, C − 1] stands for [u, 1]: the state panels add the column of ones to each block
    /// of tokens in cache; elsewhere it is appended here.
    /// </remarks>
    internal Tensor StateTransposed(PackedTaylorFeatures features, Tensor extended, Tensor u, bool appendOne = false)
    {
        using var _ = Clock?.Time(Stages.State, 2 * Rows(extended) * features.Size * (u.size(-1) + (appendOne ? 1 : 0)));
        if (appendOne && !(StatesInCache(features, extended, u) && StatePanels.Supports(features.D)))
        {
            using var withOne = TaylorFeatures.AppendOnes(u);
            return StateTransposed(features, extended, withOne);
        }
        bool centre = CentresIn(features, extended);
        if (StatesInCache(features, extended, u) && (!centre || StatePanels.Supports(features.D)))
            return FeatureStates.Transposed(extended, u, features.D, features.Rows, appendOne, centre);
        using var phi = Build(features, extended);
        return MatMul(u.transpose(-1, -2), phi);
    }

    /// <summary>∂/∂x of Σ_c u_c φ(x̃)·W_c: <see cref="TokenColumns.Gradient"/>, or the feature gradient as a GEMM and the chain rule.</summary>
    /// <remarks>
    /// With <paramref name="appendOne"/>, u [..., n, C − 1] stands for [u, 1]: the token columns add the ones in cache; elsewhere they
    /// are appended here. With <paramref name="addTo"/> [..., n, D], the gradient is added to it, which is returned, as in <see cref="Project"/>.
    /// </remarks>
    internal Tensor Gradient(PackedTaylorFeatures features, Tensor extended, Tensor u, Tensor weightedState, bool appendOne = false, Tensor? addTo = null)
    {
        using var _ = Clock?.Time(Stages.Gradient, 2 * Rows(extended) * features.Size * (u.size(-1) + (appendOne ? 1 : 0)));
        if (addTo is not null && !(features.Order == 2 && CpuKernels && TokenColumns.Supports(features, extended, weightedState, u, appendOne)
                                   && TokenColumns.AddsTo(addTo, ProductShape(extended, features.D))))
        {
            using var gradient = Gradient(features, extended, u, weightedState, appendOne);
            return addTo.AddInPlace(gradient);
        }
        bool centre = CentresIn(features, extended);
        if (appendOne && !(features.Order == 2 && CpuKernels && TokenColumns.Supports(features, extended, weightedState, u, appendOne: true)))
        {
            using var withOne = TaylorFeatures.AppendOnes(u);
            return Gradient(features, extended, withOne, weightedState);
        }
        if (features.Order == 1) return u.matmul(weightedState.narrow(-2, 0, features.D).transpose(-1, -2)); // [..., n, D]
        if (CpuKernels && TokenColumns.Supports(features, extended, weightedState, u, appendOne))
            return TokenColumns.Gradient(u, weightedState, extended, features.D, features.Rows, centre, appendOne, addTo);
        using var scope = NewDisposeScope();
        extended = features.ExtendedIfRaw(extended) ?? extended;                          // centred there when centre
        var featureGradient = MatMul(u, features.DMajorTransposed(weightedState));        // [..., n, F]
        var dx = CpuKernels && PackedFeatureLoops.SupportsChainRule(features, featureGradient, extended, u, weightedState)
            ? PackedFeatureLoops.ChainRule(featureGradient, extended, features.D, features.Rows)
            : features.ChainRuleByBroadcast(featureGradient, extended);
        if (centre) dx = dx - dx.mean(new long[] { -1 }, keepdim: true);                  // through the centring
        return dx.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The weighted states before (after) each chunk of a group: one pass (<see cref="PackedFeatureLoops.RunningStates"/>) or tensor ops.
    /// With <paramref name="into"/> ([..., G, C, F], delta's shape) they are written there (copied in where the pass cannot write
    /// it) and its transposed view is returned.
    /// </summary>
    internal Tensor RunningStates(PackedTaylorFeatures features, Tensor delta, Tensor carry, bool reverse, Tensor? into = null)
    {
        using var _ = Clock?.Time(Stages.RunningStates, 0);
        if (into is not null && !into.Shape().SequenceEqual(delta.Shape()))
            throw new ArgumentException($"the chunk states are [{string.Join(", ", delta.Shape())}]; got into [{string.Join(", ", into.Shape())}]", nameof(into));
        if (CpuKernels && PackedFeatureLoops.SupportsRunningStates(delta, carry) && (into is null || PackedFeatureLoops.WritableStates(into, delta)))
            return PackedFeatureLoops.RunningStates(delta, carry, features.WeightValues, reverse, into);
        var states = features.RunningStatesByTensorOps(delta, carry, reverse);                     // [..., G, F, C]
        if (into is null) return states;
        using (states) into.transpose(-1, -2).copy_(states);
        return into.transpose(-1, -2);
    }

    /// <summary>
    /// The weighted states before (after, when <paramref name="reverse"/>) each chunk of a group, from the chunks' extended inputs
    /// [..., G, c, ·] and u [..., G, c, C] and the carry [..., C, F] (moved past the group): [..., G, F, C]. On the state panels in one
    /// pass (<see cref="FeatureStates.RunningTransposed"/>: no chunk state is written); else <see cref="StateTransposed"/> and
    /// <see cref="RunningStates"/>, the same bits. With <paramref name="into"/> as in <see cref="RunningStates"/>; with
    /// <paramref name="appendOne"/>, u [..., G, c, C − 1] stands for [u, 1] (as in <see cref="StateTransposed"/>).
    /// </summary>
    internal Tensor ChunkStates(PackedTaylorFeatures features, Tensor extended, Tensor u, Tensor carry, bool reverse, Tensor? into = null, bool appendOne = false)
    {
        long columns = u.size(-1) + (appendOne ? 1 : 0);
        if (CpuKernels && features.SliceScale is null && !CentresIn(features, extended) && FeatureStates.SupportsRunning(features, extended, u, carry, appendOne)
            && (into is null || PackedFeatureLoops.WritableLayout(into) && into.dtype == ScalarType.Float32
                && into.Shape().SequenceEqual(u.Shape()[..^2].Append(columns).Append(features.Size))))
        {
            using var _ = Clock?.Time(Stages.State, 2 * Rows(extended) * features.Size * columns);
            return FeatureStates.RunningTransposed(extended, u, carry, features.WeightValues, features.D, features.Rows, reverse, into, appendOne).transpose(-1, -2);
        }
        using var delta = StateTransposed(features, extended, u, appendOne);      // [..., G, C, F]
        return RunningStates(features, delta, carry, reverse, into);             // [..., G, F, C]
    }

    /// <summary>tril f(s) of each chunk's scores, in place by <see cref="MaskedPolynomialLoops"/>, or by tensor ops.</summary>
    internal Tensor MaskedPolynomial(Tensor scores, double[] a)
    {
        using var _ = Clock?.Time(Stages.MaskedPolynomial, 0);
        if (!(CpuKernels && MaskedPolynomialLoops.Supports(scores))) return TaylorFeatures.Polynomial(scores, a).tril_();
        MaskedPolynomialLoops.Polynomial(scores, a);
        return scores;
    }

    /// <summary>
    /// tril f(s)·[v, 1] [..., c, Dv + 1] for each chunk's scores s [..., c, c] (which become tril f(s)) and values v [..., c, Dv]:
    /// the block's numerator rows beside their denominators. On the CPU kernels the masked polynomial writes each row's sum as
    /// the last column as it makes the row (<see cref="MaskedPolynomialLoops.Polynomial"/>) and the product takes v as it is, Dv
    /// columns rather than Dv + 1 and no [v, 1] copy; else v gets its column of ones and one product makes both.
    /// </summary>
    internal Tensor WithinChunks(Tensor scores, double[] a, Tensor v)
    {
        long dv = v.size(-1);
        if (CpuKernels && MaskedPolynomialLoops.Supports(scores) && SimdGemm.Supports(scores, v) && v.Shape()[..^2].SequenceEqual(scores.Shape()[..^2]))
        {
            var shape = v.Shape().ToArray();
            shape[^1] = dv + 1;
            var within = empty(shape, dtype: v.dtype, device: v.device);
            using (Clock?.Time(Stages.MaskedPolynomial, 0)) MaskedPolynomialLoops.Polynomial(scores, a, within.select(-1, dv));
            MatMul(scores, v, SimdGemm.Triangle.LowerA, into: within.narrow(-1, 0, dv));
            return within;
        }
        using var vOne = TaylorFeatures.AppendOnes(v);
        return MatMul(MaskedPolynomial(scores, a), vOne, SimdGemm.Triangle.LowerA);
    }

    /// <summary>(tril f(s), tril f′(s) ⊙ u), in place by <see cref="MaskedPolynomialLoops"/>, or by tensor ops.</summary>
    internal (Tensor F, Tensor Ds) MaskedPolynomialAndDerivative(Tensor scores, Tensor upstream, double[] a, double[] b)
    {
        using var _ = Clock?.Time(Stages.MaskedPolynomial, 0);
        if (!(CpuKernels && MaskedPolynomialLoops.Supports(scores, upstream)))
            // Masked after the product: above the diagonal the blocks may hold whatever their memory held (Triangle.LowerOutputUnwritten).
            return (TaylorFeatures.Polynomial(scores, a).tril_(), TaylorFeatures.Polynomial(scores, b).mul_(upstream).tril_());
        MaskedPolynomialLoops.PolynomialAndDerivative(scores, upstream, a, b);
        return (scores, upstream);
    }

    /// <summary>Ĝ and Ĝ′ = [Ĝ, −Ĝ·o]: one pass over the tokens (<see cref="TokenLoops.ScaledOutputGradients"/>) or tensor ops.</summary>
    internal (Tensor GHat, Tensor GPrime) ScaledOutputGradients(Tensor o, Tensor g, Tensor gradOutput)
    {
        using var _ = Clock?.Time(Stages.ScaledOutputGradients, 0);
        return CpuKernels && TokenLoops.SupportsScaledOutputGradients(o, g, gradOutput)
            ? TokenLoops.ScaledOutputGradients(o, g, gradOutput)
            : FastmaxFactorized.ScaledOutputGradientsByTensorOps(o, g, gradOutput);
    }

    /// <summary>Whether the max-norm normalization's per-token work runs in <see cref="MaxNormLoops"/>.</summary>
    internal bool MaxNormLoopsFor(params Tensor[] inputs) => CpuKernels && MaxNormLoops.Supports(inputs);

    /// <summary>Whether the quadratic-term dropout draws its mask with <see cref="KeepMask"/> (else libtorch's dropout).</summary>
    internal bool KeepMaskFor(Tensor square) => CpuKernels && KeepMask.Supports(square);
}

/// <summary>
/// The one place a Fastmax path is chosen: backend × algorithm × order × causal × dtype/device → kernel. Everything below
/// the functional entry point (<see cref="FastmaxFunctional.Attention"/>) and the autograd node (<see cref="FastmaxFunction"/>)
/// asks here; the pieces inside the factorized algorithm are chosen by the <see cref="KernelPlan"/> made here.
/// </summary>
public static class FastmaxDispatch
{
    /// <summary>Largest score tensor (all batches and heads) the N×N form may build under <see cref="FastmaxAlgorithm.Auto"/>: 64 MiB in float32.</summary>
    public const long MaxQuadraticScores = 1L << 24;

    /// <summary>
    /// The backend <paramref name="requested"/> stands for with inputs on <paramref name="device"/>: Auto is the CPU kernels on
    /// the CPU and tensor ops elsewhere. An explicit <see cref="FastmaxBackend.Cpu"/> with tensors elsewhere is an error.
    /// </summary>
    public static FastmaxBackend Resolve(FastmaxBackend requested, DeviceType device) => requested switch
    {
        FastmaxBackend.Auto => device == DeviceType.CPU ? FastmaxBackend.Cpu : FastmaxBackend.TensorOps,
        FastmaxBackend.Cpu when device != DeviceType.CPU =>
            throw new ArgumentException($"Backend Cpu runs CPU tensors only; got tensors on {device}. Use Auto or TensorOps.", nameof(FastmaxOptions.Backend)),
        FastmaxBackend.Reference or FastmaxBackend.TensorOps or FastmaxBackend.Cpu => requested,
        _ => throw new ArgumentOutOfRangeException(nameof(FastmaxOptions.Backend), requested, "unknown backend"),
    };

    /// <summary>
    /// The kernel plan of a resolved backend: the CPU kernels for <see cref="FastmaxBackend.Cpu"/>, libtorch ops otherwise; the
    /// budget and whether the causal key states are kept as given.
    /// </summary>
    public static KernelPlan Plan(FastmaxBackend resolved, long featureChunkElements = KernelPlan.DefaultFeatureChunkElements, bool keepCausalStates = true)
    {
        var plan = resolved == FastmaxBackend.Cpu ? KernelPlan.Cpu : KernelPlan.TensorOps;
        if (featureChunkElements != plan.FeatureChunkElements) plan = plan.WithFeatureChunkElements(featureChunkElements);
        return keepCausalStates ? plan : plan.WithCausalStates(false);
    }

    /// <summary>
    /// The algorithm <paramref name="requested"/> stands for at these shapes. Auto picks the N×N form when there are
    /// fewer keys than about half the feature count F (at least 64 for p ≥ 2; 64 and causal only for p = 1, whose
    /// closed form has no features to save) and the scores stay under <see cref="MaxQuadraticScores"/>: below these
    /// lengths the N×N form's few large GEMMs beat the factorized kernel's per-chunk work (PERF.md records the crossover).
    /// </summary>
    public static FastmaxAlgorithm Algorithm(FastmaxAlgorithm requested, int order, bool causal, long heads, long nq, long nk, long d)
    {
        if (requested != FastmaxAlgorithm.Auto) return requested;
        if (heads * nq * nk > MaxQuadraticScores) return FastmaxAlgorithm.Factorized;
        long limit = order == 1 ? (causal ? 64 : 0) : Math.Max(64, TaylorFeatures.Size(d, order) / 2);
        return nk <= limit ? FastmaxAlgorithm.Quadratic : FastmaxAlgorithm.Factorized;
    }

    /// <summary>
    /// Whether the functional call, where a graph is wanted and the normalization does not fold into the kernel, runs the
    /// normalization and the kernel as one autograd node (<see cref="NormalizedFastmaxFunction"/>) rather than a node each: mean- or
    /// zero-centred max-norm and the factorized algorithm with nothing between normalization and kernel but the temperature (no
    /// linear-term or quadratic-term dropout in training).
    /// </summary>
    public static bool JoinsNormalization(FastmaxOptions options, FastmaxAlgorithm algorithm, bool regularize) =>
        options.Normalization is FastmaxNormalization.MeanCentered or FastmaxNormalization.ZeroCentered
        && algorithm == FastmaxAlgorithm.Factorized
        && !(regularize && options.Dropout is FastmaxDropout.LinearTerm or FastmaxDropout.QuadraticTerm);

    /// <summary>
    /// Whether the functional call folds the max-norm normalization into the kernel (<see cref="FoldedNormalization"/>): mean- or
    /// zero-centred max-norm, unmasked, order 2, the factorized algorithm without dropout, and CPU kernels that build x̃ from raw q
    /// and k in cache (<see cref="KernelPlan.TakesRawInputs"/>: float32, AVX-512, D + 1 ≥ 32).
    /// </summary>
    public static bool FoldsNormalization(FastmaxOptions options, double[] a, KernelPlan plan, FastmaxAlgorithm algorithm, bool regularize, Tensor q, Tensor k, Tensor v)
    {
        if (options.Normalization is not (FastmaxNormalization.MeanCentered or FastmaxNormalization.ZeroCentered)) return false;
        if (options.Causal || a.Length != 3 || algorithm != FastmaxAlgorithm.Factorized || regularize || !plan.CpuKernels) return false;
        var features = new PackedTaylorFeatures((int)q.size(3), a, plan);
        using var inNode = no_grad();   // the kernels run inside the folded node's forward and backward, where no graph is recorded
        return plan.TakesRawInputs(features, q) && plan.TakesRawInputs(features, k) && v.dtype == ScalarType.Float32
            && MaxNormLoops.Supports(q, k);
    }

    /// <summary>
    /// The factorized forward on normalized inputs: o, g and, for the unmasked orders 1 and 2 (causal: with
    /// <paramref name="forBackward"/>, on <see cref="FastmaxChunked"/>), the weighted key state(s) the backward reuses.
    /// Reference: <see cref="FactorizedReference"/> / <see cref="ChunkedReference"/> (any order). Otherwise
    /// order 3 has only those forms; order 1 runs <see cref="FirstOrderTiles"/> (unmasked) or <see cref="FirstOrderCausalScans"/>
    /// (causal) where the CPU kernels support it, else <see cref="FastmaxFirstOrder"/> / <see cref="FastmaxChunked"/>; order 2 runs
    /// <see cref="FastmaxFactorized"/> / <see cref="FastmaxChunked"/>, their pieces chosen by <paramref name="plan"/>.
    /// </summary>
    /// <remarks>
    /// <paramref name="forBackward"/>: a backward will follow, so causal orders 1 and 2 on <see cref="FastmaxChunked"/> keep the key
    /// state before each chunk too where the plan says so (<see cref="KernelPlan.KeepsCausalStates"/>; <see cref="FastmaxChunked.KeyStates"/>:
    /// O(N·F·Dv / chunk) per head), which spares the backward a pass over the keys; the unmasked key state is returned either way.
    /// </remarks>
    public static (Tensor Output, Tensor Denominator, Tensor? KeyState) Forward(
        FastmaxBackend backend, KernelPlan plan, Tensor q, Tensor k, Tensor v, double[] a, bool causal, int chunk, bool forBackward = false)
    {
        int order = a.Length - 1;
        if (backend == FastmaxBackend.Reference || order > 2)
        {
            var (o, g) = causal ? ChunkedReference.Forward(q, k, v, a, chunk) : FactorizedReference.Forward(q, k, v, a, chunk);
            return (o, g, null);
        }
        if (causal)
        {
            if (order == 1 && plan.CpuKernels && FirstOrderCausalScans.Supports(q))
            {
                var (o1, g1) = FirstOrderCausalScans.Forward(q, k, v, a);
                return (o1, g1, null);
            }
            var keyStates = forBackward && plan.KeepsCausalStates ? FastmaxChunked.KeyStates(q, v, a, chunk) : null;
            var (o, g) = FastmaxChunked.Forward(q, k, v, a, chunk, plan, keyStates);
            return (o, g, keyStates);
        }
        if (order == 1)
            return plan.CpuKernels && FirstOrderTiles.Supports(q, k, v)
                ? FirstOrderTiles.Forward(q, k, v, a)
                : FastmaxFirstOrder.Forward(q, k, v, a, plan);
        return FastmaxFactorized.ForwardKeepingState(q, k, v, a, chunk, plan);
    }

    /// <summary>dq, dk, dv for dL/do by the same kernel family <see cref="Forward"/> chose; <paramref name="keyState"/> is its, if any.</summary>
    public static (Tensor Dq, Tensor Dk, Tensor Dv) Backward(
        FastmaxBackend backend, KernelPlan plan, Tensor q, Tensor k, Tensor v, Tensor o, Tensor g, Tensor gradOutput,
        double[] a, bool causal, int chunk, Tensor? keyState)
    {
        int order = a.Length - 1;
        if (backend == FastmaxBackend.Reference || order > 2)
            return causal ? ChunkedReference.Backward(q, k, v, o, g, gradOutput, a, chunk) : FactorizedReference.Backward(q, k, v, o, g, gradOutput, a, chunk);
        if (causal)
            return order == 1 && plan.CpuKernels && FirstOrderCausalScans.Supports(q)
                ? FirstOrderCausalScans.Backward(q, k, v, o, g, gradOutput, a)
                : FastmaxChunked.Backward(q, k, v, o, g, gradOutput, a, chunk, plan, keyState);
        if (order == 1)
        {
            if (plan.CpuKernels && FirstOrderTiles.Supports(q, k, v) && keyState is not null && keyState.is_contiguous())
                return FirstOrderTiles.Backward(q, k, v, o, g, gradOutput, a, keyState);
            return FastmaxFirstOrder.Backward(q, k, v, o, g, gradOutput, a, keyState, plan);
        }
        return FastmaxFactorized.Backward(q, k, v, o, g, gradOutput, a, chunk, keyState, plan);
    }
}
