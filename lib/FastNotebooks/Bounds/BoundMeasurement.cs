namespace FastNotebooks.Bounds;

/// <summary>
/// One measured case of the gradient bound, a plain row for notebook tables and plots.
/// DiagonalScaled = N·max|∂a_ij/∂s_ij| (bound 4), OffDiagonalScaled = N²·max_{l≠j}|∂a_ij/∂s_il| (bound 20),
/// OutputJacobianRatio = max_i‖∂o_i/∂q̂_i‖₂ / max_j‖v_j‖ (bound 8); the bounds need MaxAbsS ≤ 1.
/// </summary>
public sealed record BoundMeasurement(
    string Mechanism, string Normalization, int N, double InputScale, string Inputs,
    double MaxAbsS, double DiagonalScaled, double OffDiagonalScaled, double OutputJacobianRatio)
{
    /// <summary>All three measured maxima within the bounds of <see cref="BoundConstants"/>.</summary>
    public bool WithinBounds =>
        DiagonalScaled <= BoundConstants.Diagonal && OffDiagonalScaled <= BoundConstants.OffDiagonal &&
        OutputJacobianRatio <= BoundConstants.OutputJacobian;

    public override string ToString() =>
        $"{Mechanism,-11} {Normalization,-14} N={N,4} scale={InputScale,-6:G3} {Inputs,-11} max|s|={MaxAbsS,-10:G4} " +
        $"N·diag={DiagonalScaled,-10:G4} N²·off={OffDiagonalScaled,-10:G4} ‖∂o/∂q̂‖/‖v‖={OutputJacobianRatio:G4}";
}

/// <summary>Maxima over a sweep for one mechanism, against the bounds (4, 20, 8; premise max|s| ≤ 1).</summary>
public sealed record BoundSummary(
    string Mechanism, string Normalization, int Cases,
    double MaxAbsS, double DiagonalScaled, double OffDiagonalScaled, double OutputJacobianRatio)
{
    public bool WithinBounds =>
        DiagonalScaled <= BoundConstants.Diagonal && OffDiagonalScaled <= BoundConstants.OffDiagonal &&
        OutputJacobianRatio <= BoundConstants.OutputJacobian;

    public override string ToString() =>
        $"{Mechanism,-11} {Normalization,-14} cases={Cases,3} max|s|={MaxAbsS,-10:G4} N·diag={DiagonalScaled,-10:G4} (≤ 4) " +
        $"N²·off={OffDiagonalScaled,-10:G4} (≤ 20) ‖∂o/∂q̂‖/‖v‖={OutputJacobianRatio,-10:G4} (≤ 8) {(WithinBounds ? "within" : "EXCEEDS")}";
}
