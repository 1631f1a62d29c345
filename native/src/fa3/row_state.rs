//! One query row's online softmax with two-level accumulation, as
//! bench/accuracy/low_precision_emulation.ts specifies it. The running
//! output `o` holds O in `o[..d]` and the row sum l in `o[d]`.
//!
//! - Promotion on: each step's partial (exact: int8 sums are integers
//!   below 2^24, see `MAX_PROMOTE_EVERY`) collects in `pend` for at most
//!   `promote_every` steps (of 64 keys) and never across a change of the running max;
//!   then it is added into the fp32 `o` and restarts at 0.
//! - Promotion off: `o` is a bf16 accumulator for the whole sequence: each
//!   step's partial is added into it and the sum rounded to bf16, and a
//!   rescale is rounded too. Once l is large, a step adds less than half
//!   a bf16 step and is lost: the long-context error.

use super::Settings;
use crate::formats::bf16;

#[inline(always)]
fn round_bf16(x: f32) -> f32 {
    bf16::decode(bf16::encode(x))
}

/// The state of one row.
pub struct RowState {
    pub m: f32,
    o: Vec<f32>,
    pend: Vec<f32>,
    pending: usize,
    settings: Settings,
}

impl RowState {
    pub fn new(d: usize, settings: Settings) -> RowState {
        RowState {
            m: f32::NEG_INFINITY,
            o: vec![0.0; d + 1],
            pend: vec![0.0; d + 1],
            pending: 0,
            settings,
        }
    }

    #[inline(always)]
    fn promote(&mut self) {
        for (o, p) in self.o.iter_mut().zip(self.pend.iter_mut()) {
            *o += *p;
            *p = 0.0;
        }
        self.pending = 0;
    }

    /// Takes a step's max logit: when it raises the running max, pending
    /// partials are promoted first, then O and l are rescaled.
    #[inline(always)]
    pub fn observe_max(&mut self, block_max: f32) {
        if block_max <= self.m {
            return;
        }
        let alpha = (self.m - block_max).exp();
        if self.settings.promotion {
            if self.pending > 0 {
                self.promote();
            }
            self.o.iter_mut().for_each(|o| *o *= alpha);
        } else {
            self.o.iter_mut().for_each(|o| *o = round_bf16(*o * alpha));
        }
        self.m = block_max;
    }

    /// Adds one step's partial (`part[..d]` = Σ p v, `part[d]` = Σ p),
    /// each element times `factor` (a per-step V scale, else 1).
    #[inline(always)]
    pub fn add_block(&mut self, part: &[f32], factor: f32) {
        if self.settings.promotion {
            for (p, x) in self.pend.iter_mut().zip(part) {
                *p += *x * factor;
            }
            self.pending += 1;
            if self.pending >= self.settings.promote_every {
                self.promote();
            }
        } else {
            for (o, x) in self.o.iter_mut().zip(part) {
                *o = round_bf16(*o + *x * factor);
            }
        }
    }

    /// O and l after the last block.
    pub fn finish(&mut self) -> &[f32] {
        if self.pending > 0 {
            self.promote();
        }
        &self.o
    }
}
