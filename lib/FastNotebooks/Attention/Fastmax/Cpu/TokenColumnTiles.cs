using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using static FastNotebooks.Attention.Fastmax.Cpu.SimdGemm;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>The register tiles of <see cref="TokenColumns"/>: φ·W with the features built in registers, and dφ with its chain rule.</summary>
internal static unsafe partial class TokenColumns
{
    static void GradientTile(int count, float* w, long rs, long cs, float* uT, int c, float* xT, float* dxT, int i, int j, int tilde)
    {
        switch (count)
        {
            case 1: GradientTile<R1>(w, rs, cs, uT, c, xT, dxT, i, j, tilde); break;
            case 2: GradientTile<R2>(w, rs, cs, uT, c, xT, dxT, i, j, tilde); break;
            case 3: GradientTile<R3>(w, rs, cs, uT, c, xT, dxT, i, j, tilde); break;
            case 4: GradientTile<R4>(w, rs, cs, uT, c, xT, dxT, i, j, tilde); break;
            case 5: GradientTile<R5>(w, rs, cs, uT, c, xT, dxT, i, j, tilde); break;
            case 6: GradientTile<R6>(w, rs, cs, uT, c, xT, dxT, i, j, tilde); break;
            case 7: GradientTile<R7>(w, rs, cs, uT, c, xT, dxT, i, j, tilde); break;
            case 8: GradientTile<R8>(w, rs, cs, uT, c, xT, dxT, i, j, tilde); break;
            case 9: GradientTile<R9>(w, rs, cs, uT, c, xT, dxT, i, j, tilde); break;
            case 10: GradientTile<R10>(w, rs, cs, uT, c, xT, dxT, i, j, tilde); break;
            case 11: GradientTile<R11>(w, rs, cs, uT, c, xT, dxT, i, j, tilde); break;
            case 12: GradientTile<R12>(w, rs, cs, uT, c, xT, dxT, i, j, tilde); break;
            default: throw new ArgumentOutOfRangeException(nameof(count), count, "a tile has 1 to 12 features");
        }
    }

    /// <summary>
    /// One tile of the feature gradient and its chain rule: dφᵀ[r, 0..32) = Σ_k W[f_r, k]·uT[k, 0..32) for the tile's features
    /// f_r = (i, d_r), d_r = d_0 + r (W[f_r, k] at w + r·rs + k·cs; uT is the strip's u transposed, [C, 32]), kept in 24
    /// accumulators; then, from the registers, dx̃_j += dφ_r·x̃_i for j = (i + d_r) mod D̃ and dx̃_i += Σ_r dφ_r·x̃_j (the
    /// diagonal d = 0, j = i, gets both terms). Storing the tile and reading it back for the chain rule cost
    /// two memory passes over it per tile.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GradientTile<TRows>(float* w, long rs, long cs, float* uT, int c, float* xT, float* dxT, int i, int j, int tilde) where TRows : struct, IRows
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default,
            c90 = default, c91 = default, ca0 = default, ca1 = default, cb0 = default, cb1 = default;
        float* b = uT;
        for (int k = 0; k < c; k++, w += cs, b += Strip)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            Vector512<float> s;
            { s = Vector512.Create(w[0]); c00 = SimdGemm.Fma(s, b0, c00); c01 = SimdGemm.Fma(s, b1, c01); }
            if (TRows.Count > 1) { s = Vector512.Create(w[1 * rs]); c10 = SimdGemm.Fma(s, b0, c10); c11 = SimdGemm.Fma(s, b1, c11); }
            if (TRows.Count > 2) { s = Vector512.Create(w[2 * rs]); c20 = SimdGemm.Fma(s, b0, c20); c21 = SimdGemm.Fma(s, b1, c21); }
            if (TRows.Count > 3) { s = Vector512.Create(w[3 * rs]); c30 = SimdGemm.Fma(s, b0, c30); c31 = SimdGemm.Fma(s, b1, c31); }
            if (TRows.Count > 4) { s = Vector512.Create(w[4 * rs]); c40 = SimdGemm.Fma(s, b0, c40); c41 = SimdGemm.Fma(s, b1, c41); }
            if (TRows.Count > 5) { s = Vector512.Create(w[5 * rs]); c50 = SimdGemm.Fma(s, b0, c50); c51 = SimdGemm.Fma(s, b1, c51); }
            if (TRows.Count > 6) { s = Vector512.Create(w[6 * rs]); c60 = SimdGemm.Fma(s, b0, c60); c61 = SimdGemm.Fma(s, b1, c61); }
            if (TRows.Count > 7) { s = Vector512.Create(w[7 * rs]); c70 = SimdGemm.Fma(s, b0, c70); c71 = SimdGemm.Fma(s, b1, c71); }
            if (TRows.Count > 8) { s = Vector512.Create(w[8 * rs]); c80 = SimdGemm.Fma(s, b0, c80); c81 = SimdGemm.Fma(s, b1, c81); }
            if (TRows.Count > 9) { s = Vector512.Create(w[9 * rs]); c90 = SimdGemm.Fma(s, b0, c90); c91 = SimdGemm.Fma(s, b1, c91); }
            if (TRows.Count > 10) { s = Vector512.Create(w[10 * rs]); ca0 = SimdGemm.Fma(s, b0, ca0); ca1 = SimdGemm.Fma(s, b1, ca1); }
            if (TRows.Count > 11) { s = Vector512.Create(w[11 * rs]); cb0 = SimdGemm.Fma(s, b0, cb0); cb1 = SimdGemm.Fma(s, b1, cb1); }
        }
        var (xi0, xi1) = (Vector512.Load(xT + i * Strip), Vector512.Load(xT + i * Strip + 16));
        Vector512<float> sum0 = default, sum1 = default;
        Chain(c00, c01, xi0, xi1, ref sum0, ref sum1, xT, dxT, j);
        if (TRows.Count > 1) Chain(c10, c11, xi0, xi1, ref sum0, ref sum1, xT, dxT, Wrap(j + 1, tilde));
        if (TRows.Count > 2) Chain(c20, c21, xi0, xi1, ref sum0, ref sum1, xT, dxT, Wrap(j + 2, tilde));
        if (TRows.Count > 3) Chain(c30, c31, xi0, xi1, ref sum0, ref sum1, xT, dxT, Wrap(j + 3, tilde));
        if (TRows.Count > 4) Chain(c40, c41, xi0, xi1, ref sum0, ref sum1, xT, dxT, Wrap(j + 4, tilde));
        if (TRows.Count > 5) Chain(c50, c51, xi0, xi1, ref sum0, ref sum1, xT, dxT, Wrap(j + 5, tilde));
        if (TRows.Count > 6) Chain(c60, c61, xi0, xi1, ref sum0, ref sum1, xT, dxT, Wrap(j + 6, tilde));
        if (TRows.Count > 7) Chain(c70, c71, xi0, xi1, ref sum0, ref sum1, xT, dxT, Wrap(j + 7, tilde));
        if (TRows.Count > 8) Chain(c80, c81, xi0, xi1, ref sum0, ref sum1, xT, dxT, Wrap(j + 8, tilde));
        if (TRows.Count > 9) Chain(c90, c91, xi0, xi1, ref sum0, ref sum1, xT, dxT, Wrap(j + 9, tilde));
        if (TRows.Count > 10) Chain(ca0, ca1, xi0, xi1, ref sum0, ref sum1, xT, dxT, Wrap(j + 10, tilde));
        if (TRows.Count > 11) Chain(cb0, cb1, xi0, xi1, ref sum0, ref sum1, xT, dxT, Wrap(j + 11, tilde));
        float* dxi = dxT + i * Strip;
        (Vector512.Load(dxi) + sum0).Store(dxi);
        (Vector512.Load(dxi + 16) + sum1).Store(dxi + 16);
    }

    /// <summary>One feature's chain rule for 32 tokens: dx̃_j += g·x̃_i, and g·x̃_j into the running sum for dx̃_i.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Chain(Vector512<float> g0, Vector512<float> g1, Vector512<float> xi0, Vector512<float> xi1,
        ref Vector512<float> sum0, ref Vector512<float> sum1, float* xT, float* dxT, int j)
    {
        float* xj = xT + j * Strip, dxj = dxT + j * Strip;
        sum0 = SimdGemm.Fma(g0, Vector512.Load(xj), sum0);
        sum1 = SimdGemm.Fma(g1, Vector512.Load(xj + 16), sum1);
        SimdGemm.Fma(g0, xi0, Vector512.Load(dxj)).Store(dxj);
        SimdGemm.Fma(g1, xi1, Vector512.Load(dxj + 16)).Store(dxj + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Wrap(int j, int tilde) => j >= tilde ? j - tilde : j;

    static void ProjectTile(int count, float* w, long ldw, long cs, float* xT, float* outT, int tilde, int rows)
    {
        switch (count)
        {
            case 1: ProjectTile<R1>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 2: ProjectTile<R2>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 3: ProjectTile<R3>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 4: ProjectTile<R4>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 5: ProjectTile<R5>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 6: ProjectTile<R6>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 7: ProjectTile<R7>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 8: ProjectTile<R8>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 9: ProjectTile<R9>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 10: ProjectTile<R10>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 11: ProjectTile<R11>(w, ldw, cs, xT, outT, tilde, rows); break;
            case 12: ProjectTile<R12>(w, ldw, cs, xT, outT, tilde, rows); break;
            default: throw new ArgumentOutOfRangeException(nameof(count), count, "a tile has 1 to 12 columns");
        }
    }

    /// <summary>
    /// outT[r, 0..32) = Σ_f W[f, r]·φ_f for the tile's columns r of W (at w, row stride ldw) and the strip's features
    /// φ_(i,d) = x̃_i ⊙ x̃_(i+d), built in two registers per feature; 24 accumulators. W[f, c0 + r] is at w + f·ldw + r·cs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ProjectTile<TRows>(float* w, long ldw, long cs, float* xT, float* outT, int tilde, int rows) where TRows : struct, IRows
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default,
            c90 = default, c91 = default, ca0 = default, ca1 = default, cb0 = default, cb1 = default;
        float* a = w;
        for (int i = 0; i < tilde; i++)
        {
            var (xi0, xi1) = (Vector512.Load(xT + i * Strip), Vector512.Load(xT + i * Strip + 16));
            for (int shift = 0, j = i; shift < rows; shift++, a += ldw, j = j + 1 == tilde ? 0 : j + 1)
            {
                var b0 = xi0 * Vector512.Load(xT + j * Strip);
                var b1 = xi1 * Vector512.Load(xT + j * Strip + 16);
                Vector512<float> s;
                { s = Vector512.Create(a[0]); c00 = SimdGemm.Fma(s, b0, c00); c01 = SimdGemm.Fma(s, b1, c01); }
                if (TRows.Count > 1) { s = Vector512.Create(a[1 * cs]); c10 = SimdGemm.Fma(s, b0, c10); c11 = SimdGemm.Fma(s, b1, c11); }
                if (TRows.Count > 2) { s = Vector512.Create(a[2 * cs]); c20 = SimdGemm.Fma(s, b0, c20); c21 = SimdGemm.Fma(s, b1, c21); }
                if (TRows.Count > 3) { s = Vector512.Create(a[3 * cs]); c30 = SimdGemm.Fma(s, b0, c30); c31 = SimdGemm.Fma(s, b1, c31); }
                if (TRows.Count > 4) { s = Vector512.Create(a[4 * cs]); c40 = SimdGemm.Fma(s, b0, c40); c41 = SimdGemm.Fma(s, b1, c41); }
                if (TRows.Count > 5) { s = Vector512.Create(a[5 * cs]); c50 = SimdGemm.Fma(s, b0, c50); c51 = SimdGemm.Fma(s, b1, c51); }
                if (TRows.Count > 6) { s = Vector512.Create(a[6 * cs]); c60 = SimdGemm.Fma(s, b0, c60); c61 = SimdGemm.Fma(s, b1, c61); }
                if (TRows.Count > 7) { s = Vector512.Create(a[7 * cs]); c70 = SimdGemm.Fma(s, b0, c70); c71 = SimdGemm.Fma(s, b1, c71); }
                if (TRows.Count > 8) { s = Vector512.Create(a[8 * cs]); c80 = SimdGemm.Fma(s, b0, c80); c81 = SimdGemm.Fma(s, b1, c81); }
                if (TRows.Count > 9) { s = Vector512.Create(a[9 * cs]); c90 = SimdGemm.Fma(s, b0, c90); c91 = SimdGemm.Fma(s, b1, c91); }
                if (TRows.Count > 10) { s = Vector512.Create(a[10 * cs]); ca0 = SimdGemm.Fma(s, b0, ca0); ca1 = SimdGemm.Fma(s, b1, ca1); }
                if (TRows.Count > 11) { s = Vector512.Create(a[11 * cs]); cb0 = SimdGemm.Fma(s, b0, cb0); cb1 = SimdGemm.Fma(s, b1, cb1); }
            }
        }
        Store(outT, c00, c01);
        if (TRows.Count > 1) Store(outT + 1 * Strip, c10, c11);
        if (TRows.Count > 2) Store(outT + 2 * Strip, c20, c21);
        if (TRows.Count > 3) Store(outT + 3 * Strip, c30, c31);
        if (TRows.Count > 4) Store(outT + 4 * Strip, c40, c41);
        if (TRows.Count > 5) Store(outT + 5 * Strip, c50, c51);
        if (TRows.Count > 6) Store(outT + 6 * Strip, c60, c61);
        if (TRows.Count > 7) Store(outT + 7 * Strip, c70, c71);
        if (TRows.Count > 8) Store(outT + 8 * Strip, c80, c81);
        if (TRows.Count > 9) Store(outT + 9 * Strip, c90, c91);
        if (TRows.Count > 10) Store(outT + 10 * Strip, ca0, ca1);
        if (TRows.Count > 11) Store(outT + 11 * Strip, cb0, cb1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(float* target, Vector512<float> first, Vector512<float> second)
    {
        first.Store(target);
        second.Store(target + 16);
    }
}
