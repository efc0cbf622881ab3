namespace FastNotebooks.Bounds;

/// <summary>
/// The constants of the Fastmax gradient bound for p = 2 (a = 1, 1, 1/2) under |s| ≤ 1 (derived in README.md in
/// this folder). They bound derivatives with respect to the normalized q̂, k̂ and the scores s; the gradient with
/// respect to the raw q, k grows like 1/scale as the inputs shrink. N is the number of keys a query sees: N for
/// unmasked attention, i + 1 for query i under the causal mask. On [−1, 1]: f(s) = 1 + s + s²/2 ∈ [1/2, 5/2],
/// f′(s) = 1 + s ∈ [0, 2], so g_i = Σ_j f(s_ij) ≥ N/2, and ∂a_ij/∂s_il = (δ_jl f′_ij − a_ij f′_il)/g_i.
/// </summary>
public static class BoundConstants
{
    /// <summary>
    /// N·|∂a_ij/∂s_ij| ≤ 4: the diagonal term is f′_ij(1 − a_ij)/g_i ≤ 2·1/(N/2) = 4/N
    /// (f′ ≤ 2, 0 ≤ 1 − a ≤ 1, g ≥ N/2).
    /// </summary>
    public const double Diagonal = 4;

    /// <summary>
    /// N²·|∂a_ij/∂s_il| ≤ 20 for l ≠ j: the term is a_ij f′_il/g_i with a_ij = f_ij/g_i ≤ (5/2)/(N/2) = 5/N,
    /// so ≤ (5/N)·2/(N/2) = 20/N².
    /// </summary>
    public const double OffDiagonal = 20;

    /// <summary>
    /// ‖∂o_i/∂q̂_i‖₂ ≤ 8·max_j‖v_j‖: ∂o_i/∂q̂_i = Σ_l f′_il (v_l − o_i) k̂_lᵀ / g_i, and each of the N terms
    /// has norm ≤ 2 · 2 max‖v‖ · 1 (‖v_l − o_i‖ ≤ 2 max‖v‖ since o_i is a convex combination; ‖k̂_l‖ ≤ 1),
    /// divided by g_i ≥ N/2.
    /// </summary>
    public const double OutputJacobian = 8;

    /// <summary>The premise: every bound above assumes max|s| ≤ 1.</summary>
    public const double MaxAbsS = 1;

    /// <summary>
    /// The premise's other side: under |s| ≤ 1 every weight lies in [1/(5N), 5/N] (f ∈ [1/2, 5/2], g ∈ [N/2, 5N/2]),
    /// so within a row the largest weight is at most 5 times the smallest.
    /// </summary>
    public const double MaxRowSpread = 5;
}
