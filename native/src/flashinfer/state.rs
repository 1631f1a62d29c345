//! The attention state of one query row over a set of keys, and the
//! log-sum-exp merge that joins the states of disjoint key sets (split-KV).
//!
//! A finished state is FlashInfer's pair (v, s): `v` the softmax-weighted
//! mean of the values (normalised) and `s = ln Σ_j e^{x_j}`, the
//! log-sum-exp of the logits in **base e** (natural log, as core's
//! reference reports `lse`; FlashInfer's CUDA kernels keep base 2 because
//! they scale logits by log2(e) and use exp2). Merging n states:
//!
//! `S = ln Σ_i e^{s_i}`, `v = Σ_i e^{s_i - S} v_i`,
//!
//! computed from `m = max_i s_i` so that no exponent is positive. A state
//! over no visible key has `s = -inf` and weighs nothing; if every state is
//! empty the merge gives zeros and `-inf` (never NaN from -inf - -inf).

/// Finishes a running state (max `m`, sum `l`, unnormalised `o`): writes
/// `o / l` into `out` and returns `s = m + ln l`; an empty state (`l == 0`)
/// writes zeros and returns `-inf`.
pub fn finish(m: f32, l: f32, o: &[f32], out: &mut [f32]) -> f32 {
    if l == 0.0 {
        out.fill(0.0);
        return f32::NEG_INFINITY;
    }
    let inv = 1.0 / l;
    for (y, x) in out.iter_mut().zip(o) {
        *y = x * inv;
    }
    m + l.ln()
}

/// Merges `s.len()` states (`v` holds their `d`-element means, back to
/// back) into `out`; returns the merged log-sum-exp (base e).
pub fn merge(v: &[f32], s: &[f32], out: &mut [f32]) -> f32 {
    let d = out.len();
    let m = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    out.fill(0.0);
    if m == f32::NEG_INFINITY {
        return m;
    }
    let mut total = 0.0f32;
    for (i, si) in s.iter().enumerate() {
        let w = (si - m).exp();
        total += w;
        for (y, x) in out.iter_mut().zip(&v[i * d..(i + 1) * d]) {
            *y += w * x;
        }
    }
    let inv = 1.0 / total;
    out.iter_mut().for_each(|y| *y *= inv);
    m + total.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_two_halves_equals_one_pass() {
        let logits = [0.5f32, -1.0, 2.0, 0.25];
        let values = [1.0f32, 2.0, 3.0, 4.0];
        let one = |js: &[usize]| {
            let m = js
                .iter()
                .map(|&j| logits[j])
                .fold(f32::NEG_INFINITY, f32::max);
            let l: f32 = js.iter().map(|&j| (logits[j] - m).exp()).sum();
            let o: f32 = js.iter().map(|&j| (logits[j] - m).exp() * values[j]).sum();
            let mut out = [0.0];
            let s = finish(m, l, &[o], &mut out);
            (out[0], s)
        };
        let (all, s_all) = one(&[0, 1, 2, 3]);
        let (a, s_a) = one(&[0, 1]);
        let (b, s_b) = one(&[2, 3]);
        let mut out = [0.0];
        let s = merge(&[a, b], &[s_a, s_b], &mut out);
        assert!((out[0] - all).abs() < 1e-6 && (s - s_all).abs() < 1e-6);
        let s = merge(&[a, 7.0], &[s_a, f32::NEG_INFINITY], &mut out);
        assert!((out[0] - a).abs() < 1e-6 && (s - s_a).abs() < 1e-6);
    }
}
