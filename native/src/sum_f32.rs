//! `sumF32`: the smallest real kernel, proving zero-copy typed-array access.

/// Sums `values` in order, accumulating in f64 so that sums of f32 values
/// with few significant bits are exact. NaN propagates; infinities add as
/// IEEE 754 says (inf + -inf is NaN); an empty slice sums to +0.
pub fn sum_f32(values: &[f32]) -> f64 {
    // fold from +0.0: `Iterator::sum` of no floats is -0.0.
    values
        .iter()
        .fold(0.0, |total, value| total + f64::from(*value))
}
