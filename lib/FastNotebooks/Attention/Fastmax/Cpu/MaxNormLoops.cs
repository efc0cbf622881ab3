using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using FastNotebooks.Attention.Fastmax.TensorOps;
using static TorchSharp.torch;
using static FastNotebooks.Attention.Fastmax.Cpu.TokenLoops;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// The per-token halves of <see cref="MaxNormFunction"/> as one loop over CPU memory: centring and the token norm in
/// the forward, the token dot dy·y and the centred combination α·dy + β·y in the backward, each in one pass where
/// libtorch takes two to five with temporaries of the input's size (both are bound by memory traffic). The reductions across tokens (largest norm, its holder) stay
/// tensor ops on [B, H, N]; the tensor-op forms in <see cref="MaxNormFunction"/> are the reference these are tested against.
/// </summary>
internal static unsafe class MaxNormLoops
{
    /// <summary>True where these loops take the tensors (<see cref="TokenLoops.Supports"/>).</summary>
    public static bool Supports(params Tensor[] inputs) => TokenLoops.Supports(inputs);

    /// <summary>c = x − mean(x) per token (a copy of x when not <paramref name="centre"/>) [..., N, D] and ‖c‖ [..., N].</summary>
    public static (Tensor Centred, Tensor Norms) CentreAndNorm(Tensor x, bool centre)
    {
        using var input = x.contiguous();
        var centred = empty(input.Shape(), dtype: input.dtype, device: input.device);
        var norms = empty(input.Shape()[..^1], dtype: input.dtype, device: input.device);
        int d = (int)input.size(-1);
        if (input.dtype == ScalarType.Float32 && MaxNormZmm.Takes(d))
        {
            float* px = Pointer<float>(input);
            float* pc = Pointer<float>(centred);
            float* pn = Pointer<float>(norms);
            ForTokenRanges(input.numel() / d, d, (start, count) => MaxNormZmm.CentreAndNorm(px, pc, pn, start, count, d, centre));
            return (centred, norms);
        }
        ForTokenRanges(input.numel() / d, d, (start, count) =>
        {
            if (input.dtype == ScalarType.Float32) CentreAndNorm<float>(input, centred, norms, start, count, d, centre);
            else CentreAndNorm<double>(input, centred, norms, start, count, d, centre);
        });
        return (centred, norms);
    }

    /// <summary>
    /// The largest token norm ‖x_t − mean(x_t)‖ (or ‖x_t‖ when not <paramref name="centre"/>) of each slice of x [..., N, D] and the
    /// first token that has it, in slice order, reading x once and writing nothing per token (<see cref="FoldedNormalization"/>);
    /// 0 and token 0 for a slice without tokens. The reference: <see cref="CentreAndNorm(Tensor, bool)"/>'s norms and their maximum.
    /// </summary>
    public static (double[] Norms, long[] Holders) LargestNorms(Tensor x, bool centre)
    {
        using var input = x.contiguous();
        int d = (int)input.size(-1);
        long n = input.size(-2), slices = TokenColumns.SliceCount(input);
        var (largest, holders) = (new double[slices], new long[slices]);
        if (n == 0 || d == 0) return (largest, holders);
        void Slice(long slice) => (largest[slice], holders[slice]) = input.dtype == ScalarType.Float32
            ? (d >= 16 && Vector512.IsHardwareAccelerated ? LargestNormInZmm(input, slice, n, d, centre) : LargestNorm<float>(input, slice, n, d, centre))
            : LargestNorm<double>(input, slice, n, d, centre);
        ForSlices(slices, n, d, Slice);
        return (largest, holders);
    }

    /// <summary>
    /// The largest norms' share of the gradient, added in place (<see cref="FoldedNormalization"/>): for each slice with largest norm m
    /// held by token h, dL/dm = −(1/m)·Σ_t dx_t·c_t (dx the gradient with the scale held fixed, c the centred tokens: scaling c
    /// and 1/m together changes nothing), and m = ‖c_h‖ passes it on as dL/dm·c_h/m to token h. Float32 x [..., N, D ≥ 16],
    /// contiguous dx of its shape, AVX-512 (what the folded kernels take).
    /// </summary>
    public static unsafe void AddScaleGradient(Tensor dx, Tensor x, double[] norms, long[] holders, bool centre)
    {
        using var input = x.contiguous();
        int d = (int)input.size(-1);
        long n = input.size(-2), slices = TokenColumns.SliceCount(input);
        if (input.dtype != ScalarType.Float32 || dx.dtype != ScalarType.Float32 || !dx.is_contiguous() || d < 16 || !Vector512.IsHardwareAccelerated
            || !dx.Shape().SequenceEqual(input.Shape()))
            throw new ArgumentException($"the folded scale gradient takes float32 [..., N, D ≥ 16] with AVX-512; got dx {dx.dtype} [{string.Join(", ", dx.Shape())}], x {input.dtype} [{string.Join(", ", input.Shape())}]", nameof(dx));
        if (n == 0) return;
        float* xs = SimdGemm.Address(input), gs = SimdGemm.Address(dx);
        void Slice(long slice) => AddSliceScaleGradient(gs + slice * n * d, xs + slice * n * d, n, d, norms[slice], holders[slice], centre);
        ForSlices(slices, n, d, Slice);
        GC.KeepAlive(input);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void AddSliceScaleGradient(float* g, float* x, long n, int d, double norm, long holder, bool centre)
    {
        float* c = stackalloc float[d];
        double total = 0;
        if (d == 32)   // the common head size: the token centred in two registers, not copied
            for (long t = 0; t < n; t++)
            {
                var (a, b) = MaxNormZmm.Token32(x + t * 32, centre);
                total += Vector512.Sum(Vector512.Load(g + t * 32) * a + Vector512.Load(g + t * 32 + 16) * b);
            }
        else for (long t = 0; t < n; t++)
        {
            float* token = Token(x + t * d, d, c, centre), gt = g + t * d;
            int i = 0;
            var products = Vector512<float>.Zero;
            for (; i + 16 <= d; i += 16) products += Vector512.Load(gt + i) * Vector512.Load(token + i);
            float sum = Vector512.Sum(products);
            for (; i < d; i++) sum += gt[i] * token[i];
            total += sum;
        }
        float coefficient = (float)(-total / (norm * norm));
        float* held = Token(x + holder * d, d, c, centre), gh = g + holder * d;
        for (int i = 0; i < d; i++) gh[i] += coefficient * held[i];

        static float* Token(float* xt, int d, float* buffer, bool centre)
        {
            if (!centre) return xt;
            StatePanels.CentredCopy(xt, d, buffer);
            return buffer;
        }
    }

    /// <summary><see cref="LargestNorm{T}"/> in float32 zmm registers, each token centred by <see cref="StatePanels.CentredCopy"/> as the kernels centre it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe (double, long) LargestNormInZmm(Tensor input, long slice, long n, int d, bool centre)
    {
        float* x = SimdGemm.Address(input) + slice * n * d;
        float largest = 0;
        long holder = 0;
        if (d == 32)   // the common head size: each token stays in two registers, centred there
        {
            for (long t = 0; t < n; t++, x += 32)
            {
                var (a, b) = MaxNormZmm.Token32(x, centre);
                float square = Vector512.Sum(a * a + b * b);
                if (square > largest) (largest, holder) = (square, t);
            }
            return (Math.Sqrt(largest), holder);
        }
        float* c = stackalloc float[d];
        for (long t = 0; t < n; t++, x += d)
        {
            float* token = x;
            if (centre)
            {
                StatePanels.CentredCopy(x, d, c);
                token = c;
            }
            int i = 0;
            var squares = Vector512<float>.Zero;
            for (; i + 16 <= d; i += 16)
            {
                var v = Vector512.Load(token + i);
                squares += v * v;
            }
            float total = Vector512.Sum(squares);
            for (; i < d; i++) total += token[i] * token[i];
            if (total > largest) (largest, holder) = (total, t);
        }
        return (Math.Sqrt(largest), holder);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static (double, long) LargestNorm<T>(Tensor input, long slice, long n, int d, bool centre) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var x = Elements<T>(input).Slice((int)(slice * n * d), (int)(n * d));
        Span<T> c = d <= 512 ? stackalloc T[d] : new T[d];
        T width = T.CreateChecked(d), largest = T.Zero;
        long holder = 0;
        for (long t = 0; t < n; t++)
        {
            var xt = x.Slice((int)(t * d), d);
            Shift<T>(xt, centre ? -Sum<T>(xt) / width : T.Zero, c);
            T square = Dot<T>(c, c);
            if (square > largest) (largest, holder) = (square, t);
        }
        return (double.CreateChecked(T.Sqrt(largest)), holder);
    }

    /// <summary>
    /// The unmasked max-norm forward of float32 x [..., N, D] (D a multiple of 16, AVX-512: <see cref="MaxNormZmm.Takes"/>) in two
    /// passes per slice: the token norms n_t and the first token with the largest m, then y_t = c_t / max(m, floor). Returns y, n
    /// [..., N], and m, its token and the floored scale [..., 1]; what <see cref="CentreAndNorm(Tensor, bool)"/>, <c>argmax</c>,
    /// <c>gather</c>, <c>clamp_min</c> and the division give, without writing c first.
    /// </summary>
    public static (Tensor Y, Tensor Norms, Tensor Largest, Tensor Holder, Tensor Scale) SharedNormalized(Tensor x, bool centre)
    {
        using var input = x.contiguous();
        int d = (int)input.size(-1);
        if (input.dtype != ScalarType.Float32 || !MaxNormZmm.Takes(d))
            throw new ArgumentException($"the zmm normalization takes float32 tokens of D a multiple of 16 with AVX-512; got {input.dtype}, D = {d}", nameof(x));
        long n = input.size(-2), slices = TokenColumns.SliceCount(input);
        var y = empty(input.Shape(), dtype: ScalarType.Float32);
        var norms = empty(input.Shape()[..^1], dtype: ScalarType.Float32);
        var (largest, holders) = (new float[slices], new long[slices]);
        if (n > 0)
        {
            float* px = Pointer<float>(input);
            float* py = Pointer<float>(y);
            float* pn = Pointer<float>(norms);
            void Slice(long slice) => (largest[slice], holders[slice]) = MaxNormZmm.SharedNormalized(px + slice * n * d, py + slice * n * d, pn + slice * n, n, d, centre);
            ForSlices(slices, n, d, Slice);
        }
        var single = input.Shape()[..^1].ToArray();
        single[^1] = 1;
        var floored = largest.Select(m => MathF.Max(m, (float)FastmaxNormalizer.NormFloor)).ToArray();
        return (y, norms, tensor(largest).view(single), tensor(holders).view(single), tensor(floored).view(single));
    }

    /// <summary>
    /// The causal max-norm forward in one pass per slice (the running maximum needs no look ahead): for x [..., N, D], y_t =
    /// c_t / max(m_t, floor) with c_t = x_t − mean(x_t) (or x_t), n_t = ‖c_t‖, m_t = max_{s ≤ t} n_s and its token (the latest on ties,
    /// as <c>cummax</c>). Returns y, n, m, the holders and the floored scale, each [..., N] but y; the same bits as
    /// <see cref="CentreAndNorm(Tensor, bool)"/>, <c>cummax</c>, <c>clamp_min</c> and the division, which read and write y twice.
    /// </summary>
    public static (Tensor Y, Tensor Norms, Tensor Largest, Tensor Holder, Tensor Scale) RunningNormalized(Tensor x, bool centre)
    {
        using var input = x.contiguous();
        var y = empty(input.Shape(), dtype: input.dtype, device: input.device);
        var perToken = input.Shape()[..^1];
        var (norms, largest, scale) = (empty(perToken, dtype: input.dtype), empty(perToken, dtype: input.dtype), empty(perToken, dtype: input.dtype));
        var holder = empty(perToken, dtype: ScalarType.Int64);
        int d = (int)input.size(-1);
        long n = input.size(-2), slices = TokenColumns.SliceCount(input);
        bool zmm = input.dtype == ScalarType.Float32 && MaxNormZmm.Takes(d);
        float* px = zmm ? Pointer<float>(input) : null, py = zmm ? Pointer<float>(y) : null, pn = zmm ? Pointer<float>(norms) : null;
        float* pl = zmm ? Pointer<float>(largest) : null, ps = zmm ? Pointer<float>(scale) : null;
        long* ph = zmm ? Pointer<long>(holder) : null;
        void Slice(long slice)
        {
            if (zmm) MaxNormZmm.RunningNormalized(px + slice * n * d, py + slice * n * d, pn + slice * n, pl + slice * n, ph + slice * n, ps + slice * n, n, d, centre);
            else if (input.dtype == ScalarType.Float32) RunningNormalized<float>(input, y, norms, largest, holder, scale, slice, n, d, centre);
            else RunningNormalized<double>(input, y, norms, largest, holder, scale, slice, n, d, centre);
        }
        if (d == 0) throw new ArgumentException("the running normalization's loop takes D ≥ 1", nameof(x));
        if (n > 0)
        {
            ForSlices(slices, n, d, Slice);
        }
        return (y, norms, largest, holder, scale);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RunningNormalized<T>(Tensor input, Tensor yOut, Tensor normsOut, Tensor largestOut, Tensor holderOut, Tensor scaleOut,
        long slice, long n, int d, bool centre) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var x = Elements<T>(input).Slice((int)(slice * n * d), (int)(n * d));
        var y = Elements<T>(yOut).Slice((int)(slice * n * d), (int)(n * d));
        var norms = Elements<T>(normsOut).Slice((int)(slice * n), (int)n);
        var largest = Elements<T>(largestOut).Slice((int)(slice * n), (int)n);
        var scale = Elements<T>(scaleOut).Slice((int)(slice * n), (int)n);
        var holders = Elements<long>(holderOut).Slice((int)(slice * n), (int)n);
        T width = T.CreateChecked(d), floor = T.CreateChecked(FastmaxNormalizer.NormFloor), running = T.Zero;
        long held = 0;
        for (int t = 0; t < n; t++)
        {
            var xt = x.Slice(t * d, d);
            var yt = y.Slice(t * d, d);
            Shift<T>(xt, centre ? -Sum<T>(xt) / width : T.Zero, yt);
            T norm = T.Sqrt(Dot<T>(yt, yt));
            if (t == 0 || norm >= running) (running, held) = (norm, t);
            norms[t] = norm;
            largest[t] = running;
            holders[t] = held;
            T s = T.Max(running, floor);
            scale[t] = s;
            Divide<T>(yt, s, yt);
        }
    }

    /// <summary>
    /// The causal max-norm backward in two passes per slice, with what the forward returned: dm_t = −(dy_t·y_t) / m′_t (zero where the
    /// floor holds) summed onto the token holding each running maximum, then dx_t = dy_t / m′_t + β_t·y_t, β_t = dm·m′_t / n_t, centred
    /// when asked. The same bits as <see cref="MaxNormFunction"/>'s general backward with <see cref="TokenDots"/> and
    /// <see cref="CentredCombination(Tensor, Tensor, Tensor, Tensor, bool)"/>, without its tensor ops on [..., N] in between.
    /// </summary>
    public static Tensor RunningScaleGradient(Tensor dy, Tensor y, Tensor norms, Tensor scale, Tensor holder, Tensor active, bool centre) =>
        ScaleGradient(dy, y, norms, scale, holder, active, centre, running: true);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RunningScaleGradient<T>(Tensor dyIn, Tensor yIn, Tensor normsIn, Tensor scaleIn, Tensor holderIn, Tensor activeIn, Tensor result,
        long slice, long n, int d, bool centre) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var dy = Elements<T>(dyIn).Slice((int)(slice * n * d), (int)(n * d));
        var y = Elements<T>(yIn).Slice((int)(slice * n * d), (int)(n * d));
        var r = Elements<T>(result).Slice((int)(slice * n * d), (int)(n * d));
        var norms = Elements<T>(normsIn).Slice((int)(slice * n), (int)n);
        var scale = Elements<T>(scaleIn).Slice((int)(slice * n), (int)n);
        var holders = Elements<long>(holderIn).Slice((int)(slice * n), (int)n);
        var active = Elements<bool>(activeIn).Slice((int)(slice * n), (int)n);
        T[] rented = ArrayPool<T>.Shared.Rent((int)n);
        try
        {
            var dNorms = rented.AsSpan(0, (int)n);
            dNorms.Clear();
            for (int t = 0; t < n; t++)
                dNorms[(int)holders[t]] += (-Dot<T>(dy.Slice(t * d, d), y.Slice(t * d, d)) / scale[t]) * (active[t] ? T.One : T.Zero);
            T floor = T.CreateChecked(FastmaxNormalizer.NormFloor), width = T.CreateChecked(d);
            for (int t = 0; t < n; t++)
            {
                var rt = r.Slice(t * d, d);
                Combine<T>(dy.Slice(t * d, d), T.One / scale[t], y.Slice(t * d, d), dNorms[t] * (scale[t] / T.Max(norms[t], floor)), rt);
                if (centre) Shift<T>(rt, -Sum<T>(rt) / width, rt);
            }
        }
        finally { ArrayPool<T>.Shared.Return(rented); }
    }

    /// <summary>a_t·b_t per token [..., N] for a, b [..., N, D].</summary>
    public static Tensor TokenDots(Tensor a, Tensor b)
    {
        using var ac = a.contiguous();
        using var bc = b.contiguous();
        var dots = empty(ac.Shape()[..^1], dtype: ac.dtype, device: ac.device);
        int d = (int)ac.size(-1);
        if (ac.dtype == ScalarType.Float32 && bc.dtype == ScalarType.Float32 && MaxNormZmm.Takes(d))
        {
            float* pa = Pointer<float>(ac);
            float* pb = Pointer<float>(bc);
            float* pd = Pointer<float>(dots);
            ForTokenRanges(ac.numel() / d, d, (start, count) => MaxNormZmm.TokenDots(pa, pb, pd, start, count, d));
            return dots;
        }
        ForTokenRanges(ac.numel() / d, d, (start, count) =>
        {
            if (ac.dtype == ScalarType.Float32) TokenDots<float>(ac, bc, dots, start, count, d);
            else TokenDots<double>(ac, bc, dots, start, count, d);
        });
        return dots;
    }

    /// <summary>α_t·a_t + β_t·b_t per token [..., N, D], minus its mean over D when <paramref name="centre"/>; α, β [..., N].</summary>
    public static Tensor CentredCombination(Tensor a, Tensor b, Tensor alpha, Tensor beta, bool centre)
    {
        using var ac = a.contiguous();
        using var bc = b.contiguous();
        using var alphas = alpha.expand(ac.Shape()[..^1]).contiguous();
        using var betas = beta.expand(ac.Shape()[..^1]).contiguous();
        var result = empty(ac.Shape(), dtype: ac.dtype, device: ac.device);
        int d = (int)ac.size(-1);
        if (ac.dtype == ScalarType.Float32 && bc.dtype == ScalarType.Float32 && alphas.dtype == ScalarType.Float32 && betas.dtype == ScalarType.Float32
            && MaxNormZmm.Takes(d))
        {
            float* pa = Pointer<float>(ac);
            float* pb = Pointer<float>(bc);
            float* pal = Pointer<float>(alphas);
            float* pbe = Pointer<float>(betas);
            float* pr = Pointer<float>(result);
            ForTokenRanges(ac.numel() / d, d, (start, count) => MaxNormZmm.CentredCombination(pa, pb, pal, pbe, pr, start, count, d, centre));
            return result;
        }
        ForTokenRanges(ac.numel() / d, d, (start, count) =>
        {
            if (ac.dtype == ScalarType.Float32) CentredCombination<float>(ac, bc, alphas, betas, result, start, count, d, centre);
            else CentredCombination<double>(ac, bc, alphas, betas, result, start, count, d, centre);
        });
        return result;
    }

    /// <summary>
    /// The whole backward of the sequence-wide max-norm (one scale m′ per slice) in two passes per slice: Σ_t dy_t·y_t, then
    /// dx_t = α·dy_t + β·y_t with α = 1/m′ and β non-zero only at the token holding the maximum, centred when asked. Same
    /// result as <see cref="MaxNormFunction"/>'s general backward with <see cref="TokenDots"/> and <see cref="CentredCombination(Tensor, Tensor, Tensor, Tensor, bool)"/>,
    /// without its dozen tensor ops on [B, H, ·] (most of its time at N = 4096). norms [..., N], scale, holder, active [..., 1].
    /// </summary>
    public static Tensor SharedScaleGradient(Tensor dy, Tensor y, Tensor norms, Tensor scale, Tensor holder, Tensor active, bool centre) =>
        ScaleGradient(dy, y, norms, scale, holder, active, centre, running: false);

    /// <summary>Both scale gradients' frame: contiguous operands, the result, and each slice's loop (<paramref name="running"/>: one scale per token).</summary>
    static Tensor ScaleGradient(Tensor dy, Tensor y, Tensor norms, Tensor scale, Tensor holder, Tensor active, bool centre, bool running)
    {
        using var dyc = dy.contiguous();
        using var yc = y.contiguous();
        using var normsc = norms.contiguous();
        using var scales = scale.contiguous();
        using var holders = holder.contiguous();
        using var actives = active.contiguous();
        var result = empty(dyc.Shape(), dtype: dyc.dtype, device: dyc.device);
        long n = dyc.size(-2), slices = TokenColumns.SliceCount(dyc);
        int d = (int)dyc.size(-1);
        if (n == 0 || d == 0) return result;
        if (dyc.dtype == ScalarType.Float32 && yc.dtype == ScalarType.Float32 && MaxNormZmm.Takes(d))
        {
            ZmmScaleGradient(dyc, yc, normsc, scales, holders, actives, result, slices, n, d, centre, running);
            return result;
        }
        void Slice(long slice)
        {
            bool single = dyc.dtype == ScalarType.Float32;
            if (running && single) RunningScaleGradient<float>(dyc, yc, normsc, scales, holders, actives, result, slice, n, d, centre);
            else if (running) RunningScaleGradient<double>(dyc, yc, normsc, scales, holders, actives, result, slice, n, d, centre);
            else if (single) SharedScaleGradient<float>(dyc, yc, normsc, scales, holders, actives, result, slice, n, d, centre);
            else SharedScaleGradient<double>(dyc, yc, normsc, scales, holders, actives, result, slice, n, d, centre);
        }
        ForSlices(slices, n, d, Slice);
        return result;
    }

    /// <summary><see cref="ScaleGradient"/>'s slices by <see cref="MaxNormZmm"/>.</summary>
    static void ZmmScaleGradient(Tensor dy, Tensor y, Tensor norms, Tensor scale, Tensor holder, Tensor active, Tensor result,
        long slices, long n, int d, bool centre, bool running)
    {
        float* pdy = Pointer<float>(dy);
        float* py = Pointer<float>(y);
        float* pr = Pointer<float>(result);
        float* pn = Pointer<float>(norms);
        float* ps = Pointer<float>(scale);
        long* ph = Pointer<long>(holder);
        bool* pa = Pointer<bool>(active);
        void Slice(long slice)
        {
            long tokens = slice * n * d;
            if (!running)
            {
                long held = ph[slice];
                MaxNormZmm.SharedScaleGradient(pdy + tokens, py + tokens, pr + tokens, n, d, ps[slice], pn[slice * n + held], held, pa[slice], centre);
                return;
            }
            float[] rented = ArrayPool<float>.Shared.Rent((int)n);
            try
            {
                Array.Clear(rented, 0, (int)n);
                fixed (float* dNorms = rented)
                    MaxNormZmm.RunningScaleGradient(pdy + tokens, py + tokens, pr + tokens, pn + slice * n, ps + slice * n, ph + slice * n, pa + slice * n,
                        dNorms, n, d, centre);
            }
            finally { ArrayPool<float>.Shared.Return(rented); }
        }
        ForSlices(slices, n, d, Slice);
    }

    /// <summary>The first element of a contiguous CPU tensor of <typeparamref name="T"/> (what <see cref="Elements{T}"/> spans).</summary>
    static T* Pointer<T>(Tensor x) where T : unmanaged => x.numel() == 0 ? null : (T*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(Elements<T>(x)));

    /// <summary>Each slice's loop, on as many threads as <see cref="TokenLoops.ThreadsFor"/> gives n·d work per slice; whole slices per thread.</summary>
    static void ForSlices(long slices, long n, int d, Action<long> slice)
    {
        int threads = ThreadsFor(slices, (double)slices * n * d);
        if (threads == 1) for (long s = 0; s < slices; s++) slice(s);
        else SharedPieces.For(slices, threads, slice);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void SharedScaleGradient<T>(Tensor dyIn, Tensor yIn, Tensor normsIn, Tensor scaleIn, Tensor holderIn, Tensor activeIn, Tensor result,
        long slice, long n, int d, bool centre) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var dy = Elements<T>(dyIn).Slice((int)(slice * n * d), (int)(n * d));
        var y = Elements<T>(yIn).Slice((int)(slice * n * d), (int)(n * d));
        var r = Elements<T>(result).Slice((int)(slice * n * d), (int)(n * d));
        T scale = Elements<T>(scaleIn)[(int)slice];
        long holder = Elements<long>(holderIn)[(int)slice];
        bool active = Elements<bool>(activeIn)[(int)slice];
        T dScale = T.Zero;
        for (long t = 0; t < n; t++) dScale += Dot<T>(dy.Slice((int)(t * d), d), y.Slice((int)(t * d), d));
        // dm = −Σ dy·y / m′ (zero where the floor holds), routed to the holder: β = dm·m′/n_holder.
        T norm = T.Max(Elements<T>(normsIn)[(int)(slice * n + holder)], T.CreateChecked(FastmaxNormalizer.NormFloor));
        T beta = active ? -dScale / scale * (scale / norm) : T.Zero;
        T alpha = T.One / scale, width = T.CreateChecked(d);
        for (long t = 0; t < n; t++)
        {
            var rt = r.Slice((int)(t * d), d);
            Combine<T>(dy.Slice((int)(t * d), d), alpha, y.Slice((int)(t * d), d), t == holder ? beta : T.Zero, rt);
            if (centre) Shift<T>(rt, -Sum<T>(rt) / width, rt);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void CentreAndNorm<T>(Tensor input, Tensor centred, Tensor normsOut, long start, long count, int d, bool centre)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var x = Elements<T>(input);
        var c = Elements<T>(centred);
        var norms = Elements<T>(normsOut);
        T width = T.CreateChecked(d);
        for (long t = start; t < start + count; t++)
        {
            var xt = x.Slice((int)(t * d), d);
            var ct = c.Slice((int)(t * d), d);
            Shift<T>(xt, centre ? -Sum<T>(xt) / width : T.Zero, ct);
            norms[(int)t] = T.Sqrt(Dot<T>(ct, ct));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void TokenDots<T>(Tensor a, Tensor b, Tensor dotsOut, long start, long count, int d)
        where T : unmanaged, INumber<T>
    {
        var x = Elements<T>(a);
        var y = Elements<T>(b);
        var dots = Elements<T>(dotsOut);
        for (long t = start; t < start + count; t++)
            dots[(int)t] = Dot<T>(x.Slice((int)(t * d), d), y.Slice((int)(t * d), d));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void CentredCombination<T>(Tensor a, Tensor b, Tensor alphas, Tensor betas, Tensor result, long start, long count, int d, bool centre)
        where T : unmanaged, INumber<T>
    {
        var x = Elements<T>(a);
        var y = Elements<T>(b);
        var al = Elements<T>(alphas);
        var be = Elements<T>(betas);
        var r = Elements<T>(result);
        T width = T.CreateChecked(d);
        for (long t = start; t < start + count; t++)
        {
            var rt = r.Slice((int)(t * d), d);
            Combine<T>(x.Slice((int)(t * d), d), al[(int)t], y.Slice((int)(t * d), d), be[(int)t], rt);
            if (centre) Shift<T>(rt, -Sum<T>(rt) / width, rt);
        }
    }
}
