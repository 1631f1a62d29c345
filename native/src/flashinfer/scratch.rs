//! Per-thread scratch memory, reused across calls so that a work item
//! allocates nothing once its thread has warmed up. A guard, not a closure:
//! a closure would compile without the caller's target features.

use std::cell::Cell;

thread_local! {
    static SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// This thread's scratch, taken out of its slot until dropped.
pub struct Scratch(Vec<f32>);

impl Scratch {
    /// At least `len` f32s, zeroed on first growth, stale afterwards.
    #[inline(always)]
    pub fn take(len: usize) -> Scratch {
        let mut buffer = SCRATCH.with(Cell::take);
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        }
        Scratch(buffer)
    }

    /// The first `len` f32s.
    #[inline(always)]
    pub fn ptr(&mut self) -> *mut f32 {
        self.0.as_mut_ptr()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.0);
        SCRATCH.with(|slot| slot.set(buffer));
    }
}
