//! One matmul's operands, borrowed from the caller, and the checks that
//! make them safe to hand to the kernels.

use super::pack::packed_len;

/// Packed weights in one of the storage types.
#[derive(Clone, Copy)]
pub enum Packed<'a> {
    F32(&'a [f32]),
    /// bf16 bits.
    Bf16(&'a [u16]),
}

impl Packed<'_> {
    pub fn len(&self) -> usize {
        match self {
            Packed::F32(w) => w.len(),
            Packed::Bf16(w) => w.len(),
        }
    }
}

/// One product, checked by the caller (see `check`).
pub struct Matmul<'a> {
    /// shape [m, k]
    pub x: &'a [f32],
    /// `packed_len(n, k)` elements
    pub packed: Packed<'a>,
    /// shape [n]
    pub bias: Option<&'a [f32]>,
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

impl Matmul<'_> {
    /// Every size mismatch, in words; `out_len` is the output's length.
    pub fn check(&self, out_len: usize) -> Result<(), String> {
        let (m, n, k) = (self.m, self.n, self.k);
        let want = packed_len(n, k).ok_or("weight shape overflows")?;
        if self.packed.len() != want {
            return Err(format!(
                "packed weight has {} elements, expected {want} for [{n}, {k}]: pack it with opsPackWeights",
                self.packed.len()
            ));
        }
        if self.x.len() != m * k {
            return Err(format!(
                "x has {} elements, expected {m} x {k}",
                self.x.len()
            ));
        }
        if out_len != m * n {
            return Err(format!("out has {out_len} elements, expected {m} x {n}"));
        }
        match self.bias {
            Some(b) if b.len() != n => Err(format!("bias has {} elements, expected {n}", b.len())),
            _ => Ok(()),
        }
    }
}
