//! A batch's page tables as core/batch.ts plans them, and the checks that
//! make every index the kernels compute stay inside its array. The
//! TypeScript backend checks the same things first with friendlier
//! messages; these exist so that a direct call can never read out of bounds.

use super::Layer;

/// Page-table description of one batch (vLLM's layout).
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    /// shape [numSeqs + 1], non-decreasing from 0.
    pub query_start_loc: &'a [i32],
    /// shape [numSeqs]: cache length after this step's write.
    pub seq_lens: &'a [i32],
    /// shape [numSeqs, maxBlocksPerSeq], row-major.
    pub block_tables: &'a [i32],
    pub max_blocks_per_seq: usize,
}

impl<'a> Batch<'a> {
    pub fn num_seqs(&self) -> usize {
        self.seq_lens.len()
    }

    /// Query tokens in the batch.
    pub fn num_tokens(&self) -> usize {
        self.query_start_loc.last().map_or(0, |n| *n as usize)
    }

    /// (first query row, query length, sequence length) of sequence `s`.
    #[inline(always)]
    pub fn sequence(&self, s: usize) -> (usize, usize, usize) {
        let start = self.query_start_loc[s] as usize;
        let end = self.query_start_loc[s + 1] as usize;
        (start, end - start, self.seq_lens[s] as usize)
    }

    /// The block id holding key `j` of sequence `s` (already validated).
    #[inline(always)]
    pub fn block(&self, s: usize, block_index: usize) -> usize {
        self.block_tables[s * self.max_blocks_per_seq + block_index] as usize
    }

    /// Checks the batch against itself and the layer; the message names
    /// the field and the values.
    pub fn validate(&self, layer: &Layer) -> Result<(), String> {
        let num_seqs = self.num_seqs();
        if self.query_start_loc.len() != num_seqs + 1 {
            return Err(format!(
                "queryStartLoc must have numSeqs + 1 = {} entries, got {}",
                num_seqs + 1,
                self.query_start_loc.len()
            ));
        }
        if self.block_tables.len() != num_seqs * self.max_blocks_per_seq {
            return Err(format!(
                "blockTables must have numSeqs * maxBlocksPerSeq = {} entries, got {}",
                num_seqs * self.max_blocks_per_seq,
                self.block_tables.len()
            ));
        }
        if self.query_start_loc[0] != 0 {
            return Err(format!(
                "queryStartLoc[0] must be 0, got {}",
                self.query_start_loc[0]
            ));
        }
        for s in 0..num_seqs {
            // i64: no difference of two i32 can overflow.
            let start = i64::from(self.query_start_loc[s]);
            let query_len = i64::from(self.query_start_loc[s + 1]) - start;
            let seq_len = self.seq_lens[s];
            if query_len < 1 {
                return Err(format!(
                    "sequence {s} has {query_len} query tokens: every sequence needs at least one"
                ));
            }
            if i64::from(seq_len) < query_len {
                return Err(format!(
                    "seqLens[{s}] = {seq_len} is shorter than its {query_len} query tokens"
                ));
            }
            let needed = (seq_len as usize).div_ceil(layer.block_size);
            if needed > self.max_blocks_per_seq {
                return Err(format!(
                    "seqLens[{s}] = {seq_len} needs {needed} blocks of {} but maxBlocksPerSeq is {}",
                    layer.block_size, self.max_blocks_per_seq
                ));
            }
            for b in 0..needed {
                let block = self.block_tables[s * self.max_blocks_per_seq + b];
                if block < 0 || block as usize >= layer.num_blocks {
                    return Err(format!(
                        "blockTables[{s}][{b}] = {block} is outside the cache's blocks 0..{}",
                        layer.num_blocks - 1
                    ));
                }
            }
        }
        Ok(())
    }
}
