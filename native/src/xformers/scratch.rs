//! Per-thread scratch memory for the attention kernels, reused across calls
//! so that a work item allocates nothing once a thread has warmed up.
//!
//! A guard rather than a closure on purpose: a closure body would be
//! compiled as its own function, without the caller's target features, and
//! every intrinsic in it would become an out-of-line call.

use std::cell::Cell;

thread_local! {
    static SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// This thread's scratch, taken out of its slot until dropped.
pub struct Scratch(Vec<f32>);

impl Scratch {
    /// At least `len` f32s (contents stale: callers initialise what they
    /// read). A nested take gets a fresh buffer, so it is never shared.
    #[inline(always)]
    pub fn take(len: usize) -> Scratch {
        let mut buffer = SCRATCH.with(Cell::take);
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        }
        Scratch(buffer)
    }

    /// Splits the first `Σ lens` f32s into consecutive parts.
    #[inline(always)]
    pub fn split<const N: usize>(&mut self, lens: [usize; N]) -> [&mut [f32]; N] {
        let mut rest = &mut self.0[..];
        let mut parts: [&mut [f32]; N] = std::array::from_fn(|_| Default::default());
        for (part, len) in parts.iter_mut().zip(lens) {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
            *part = head;
            rest = tail;
        }
        parts
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.0);
        SCRATCH.with(|slot| slot.set(buffer));
    }
}
