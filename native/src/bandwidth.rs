//! `streamRead`: this machine's memory read bandwidth, measured the way the
//! attention kernels read a KV cache (every thread of the persistent pool
//! streaming its own part of one large array), so that a kernel benchmark
//! can say what fraction of it a kernel reaches.
//!
//! Each pass XORs every 64-bit word of the array into a checksum: the loads
//! cannot be skipped (the result is returned) and XOR costs nothing next to
//! a cache miss, so the pass is bound by loads alone.

use crate::napi::{callback, JsError};
use crate::napi_sys as sys;
use crate::thread_pool::pool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Bytes one pool item reads: large enough that scheduling costs nothing,
/// small enough that every thread gets many items.
const CHUNK_BYTES: usize = 1 << 20;

/// What [`stream_read`] measured.
pub struct StreamRead {
    /// Seconds of the fastest pass (STREAM's convention: the best pass is
    /// the one least disturbed by other processes).
    pub best_seconds: f64,
    /// XOR of every 32-bit little-endian word of the data.
    pub checksum: u32,
}

/// XOR of the words of one chunk, in eight independent lanes so that the
/// loop vectorises and the loads pipeline.
fn xor_words(words: &[u64]) -> u64 {
    let mut lanes = [0u64; 8];
    let mut blocks = words.chunks_exact(8);
    for block in &mut blocks {
        for (lane, word) in lanes.iter_mut().zip(block) {
            *lane ^= *word;
        }
    }
    let tail = blocks.remainder().iter().fold(0, |acc, w| acc ^ w);
    lanes.iter().fold(tail, |acc, lane| acc ^ lane)
}

/// Reads all of `data` `passes` times over the pool. `data.len()` must be a
/// multiple of 8 bytes and 8-byte aligned (the caller checks).
pub fn stream_read(data: &[u64], passes: usize) -> StreamRead {
    let items = data.len().div_ceil(CHUNK_BYTES / 8);
    let mut best = f64::INFINITY;
    let mut checksum = 0u64;
    for _ in 0..passes.max(1) {
        let acc = AtomicU64::new(0);
        let start = Instant::now();
        pool().run(items, &|item| {
            let from = item * (CHUNK_BYTES / 8);
            let to = (from + CHUNK_BYTES / 8).min(data.len());
            acc.fetch_xor(xor_words(&data[from..to]), Ordering::Relaxed);
        });
        best = best.min(start.elapsed().as_secs_f64());
        checksum = std::hint::black_box(acc.into_inner());
    }
    StreamRead {
        best_seconds: best,
        checksum: (checksum as u32) ^ ((checksum >> 32) as u32),
    }
}

/// `streamRead(data: Uint8Array, passes: number): { bestSeconds, checksum }`,
/// reading `data` in place.
pub unsafe extern "C" fn stream_read_js(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<2>(env, info, "streamRead", |env, [data, passes]| {
        let bytes = env.typed_array(data, "streamRead() argument data")?;
        let bytes = bytes.slice::<u8>("streamRead() argument data")?;
        let passes = env.number(passes, "streamRead() argument passes")?;
        if !((1.0..=1e6).contains(&passes) && passes.fract() == 0.0) {
            return Err(JsError::TypeError(format!(
                "streamRead() argument passes must be an integer in 1..1000000, got {passes}"
            )));
        }
        // Safety: every bit pattern is a valid u64; only the aligned middle is used.
        let (head, words, tail) = unsafe { bytes.align_to::<u64>() };
        if !head.is_empty() || !tail.is_empty() {
            return Err(JsError::TypeError(format!(
                "streamRead() argument data must start on an 8-byte boundary and hold a multiple of 8 bytes, got {} bytes: pass a whole new Uint8Array(n * 8)",
                bytes.len()
            )));
        }
        let measured = stream_read(words, passes as usize);
        let object = env.object()?;
        env.set(object, "bestSeconds", env.double(measured.best_seconds)?)?;
        env.set(object, "checksum", env.uint32(measured.checksum)?)?;
        Ok(object)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_the_xor_of_every_32_bit_word() {
        let words: Vec<u64> = (0..300_001u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let expected = words
            .iter()
            .fold(0u32, |acc, w| acc ^ (*w as u32) ^ ((*w >> 32) as u32));
        let measured = stream_read(&words, 2);
        assert_eq!(measured.checksum, expected);
        assert!(measured.best_seconds > 0.0);
    }
}
