//! A batch's plan as backends/flashinfer/native_plan.ts builds it once per
//! batch: FlashInfer's page tables (indptr / indices / last_page_len) and
//! the work partition (split-KV decode chunks, prefill tiles). Every layer
//! checks it here before running it: the TypeScript plan is trusted for
//! nothing that could make a kernel read or write out of bounds, and a plan
//! that leaves an output row unwritten is refused too.

use super::Layer;

/// The plan's arrays, borrowed in place.
#[derive(Clone, Copy)]
pub struct Plan<'a> {
    /// shape [numSeqs + 1]: query rows of sequence s are qsl[s]..qsl[s + 1].
    pub query_start_loc: &'a [i32],
    /// shape [numSeqs + 1]: pages of sequence s are indices[indptr[s]..indptr[s + 1]].
    pub kv_indptr: &'a [i32],
    /// shape [indptr[numSeqs]]: page ids.
    pub kv_indices: &'a [i32],
    /// shape [numSeqs]: tokens in each sequence's last page, 1..pageSize.
    pub kv_last_page_len: &'a [i32],
    pub page_size: usize,
    /// shape [numChunks, 4]: (token, sequence, first key, end key).
    pub decode_chunks: &'a [i32],
    /// shape [numDecodes, 3]: (token, first chunk, chunk count).
    pub decode_items: &'a [i32],
    /// shape [numTiles, 4]: (first token, token count, sequence, unused).
    pub prefill_tiles: &'a [i32],
}

impl<'a> Plan<'a> {
    pub fn num_seqs(&self) -> usize {
        self.kv_last_page_len.len()
    }

    /// Query rows in the batch.
    pub fn num_tokens(&self) -> usize {
        self.query_start_loc.last().map_or(0, |n| *n as usize)
    }

    /// Keys of sequence `s` (validated plans only).
    #[inline(always)]
    pub fn seq_len(&self, s: usize) -> usize {
        let pages = (self.kv_indptr[s + 1] - self.kv_indptr[s]) as usize;
        (pages - 1) * self.page_size + self.kv_last_page_len[s] as usize
    }

    /// The page ids of sequence `s`.
    #[inline(always)]
    pub fn pages(&self, s: usize) -> &'a [i32] {
        &self.kv_indices[self.kv_indptr[s] as usize..self.kv_indptr[s + 1] as usize]
    }

    /// Position of query row `t` of sequence `s`: the queries are the
    /// sequence's last tokens.
    #[inline(always)]
    pub fn position(&self, s: usize, t: usize) -> usize {
        self.seq_len(s) + t - self.query_start_loc[s + 1] as usize
    }

    pub fn chunk(&self, c: usize) -> [usize; 4] {
        std::array::from_fn(|i| self.decode_chunks[4 * c + i] as usize)
    }

    pub fn item(&self, i: usize) -> [usize; 3] {
        std::array::from_fn(|k| self.decode_items[3 * i + k] as usize)
    }

    pub fn tile(&self, i: usize) -> [usize; 4] {
        std::array::from_fn(|k| self.prefill_tiles[4 * i + k] as usize)
    }

    /// Checks the plan against itself and the layer; the message names the
    /// field, the values and what the plan must be.
    pub fn validate(&self, layer: &Layer) -> Result<(), String> {
        let n = self.num_seqs();
        let fail = |what: String| Err(format!("{what}: pass the plan from plan(batch) unchanged"));
        if self.page_size != layer.page_size {
            return fail(format!(
                "plan.pageSize is {} but the cache's pages hold {}",
                self.page_size, layer.page_size
            ));
        }
        if self.query_start_loc.len() != n + 1 || self.kv_indptr.len() != n + 1 {
            return fail(format!(
                "plan.queryStartLoc and plan.kvIndptr must have numSeqs + 1 = {} entries, got {} and {}",
                n + 1,
                self.query_start_loc.len(),
                self.kv_indptr.len()
            ));
        }
        if self.query_start_loc[0] != 0 || self.kv_indptr[0] != 0 {
            return fail("plan.queryStartLoc[0] and plan.kvIndptr[0] must be 0".into());
        }
        if self.kv_indptr[n] as i64 != self.kv_indices.len() as i64 {
            return fail(format!(
                "plan.kvIndptr[{n}] is {} but plan.kvIndices has {} entries",
                self.kv_indptr[n],
                self.kv_indices.len()
            ));
        }
        for s in 0..n {
            let q = i64::from(self.query_start_loc[s + 1]) - i64::from(self.query_start_loc[s]);
            let pages = i64::from(self.kv_indptr[s + 1]) - i64::from(self.kv_indptr[s]);
            let last = self.kv_last_page_len[s];
            if q < 1 || pages < 1 || last < 1 || last as usize > self.page_size {
                return fail(format!(
                    "sequence {s} has {q} query tokens, {pages} pages and {last} tokens in its last page (each must be >= 1, the last <= {})",
                    self.page_size
                ));
            }
            if (pages as usize - 1) * self.page_size + (last as usize) < q as usize {
                return fail(format!(
                    "sequence {s} has fewer keys than its {q} query tokens"
                ));
            }
        }
        if let Some((i, page)) = self
            .kv_indices
            .iter()
            .enumerate()
            .find(|(_, p)| **p < 0 || **p as usize >= layer.num_pages)
        {
            return fail(format!(
                "plan.kvIndices[{i}] is {page}, outside the cache's pages 0..{}",
                layer.num_pages - 1
            ));
        }
        self.validate_work()
    }

    /// Every decode row gets one item whose chunks tile [0, seqLen); every
    /// prefill row is in exactly one tile of its own sequence.
    fn validate_work(&self) -> Result<(), String> {
        let n = self.num_seqs();
        let fail = |what: String| Err(format!("{what}: pass the plan from plan(batch) unchanged"));
        let (chunks, items, tiles) = (
            self.decode_chunks.len() / 4,
            self.decode_items.len() / 3,
            self.prefill_tiles.len() / 4,
        );
        if chunks * 4 != self.decode_chunks.len()
            || items * 3 != self.decode_items.len()
            || tiles * 4 != self.prefill_tiles.len()
            || self
                .decode_chunks
                .iter()
                .chain(self.decode_items)
                .chain(self.prefill_tiles)
                .any(|x| *x < 0)
        {
            return fail("plan.decodeChunks, decodeItems and prefillTiles must hold non-negative rows of 4, 3 and 4".into());
        }
        let mut covered = vec![false; self.num_tokens()];
        let seq_of = |t: usize| self.query_start_loc.partition_point(|x| *x as usize <= t) - 1;
        for i in 0..items {
            let [t, first, count] = self.item(i);
            if t >= covered.len() || covered[t] || count == 0 || first + count > chunks {
                return fail(format!(
                    "plan.decodeItems row {i} is not a fresh token with chunks"
                ));
            }
            let s = seq_of(t);
            if self.query_start_loc[s + 1] as usize - t != 1
                || t != self.query_start_loc[s] as usize
            {
                return fail(format!(
                    "plan.decodeItems row {i}: token {t} is not a decode"
                ));
            }
            covered[t] = true;
            let mut next = 0;
            for c in first..first + count {
                let [ct, cs, k0, k1] = self.chunk(c);
                if ct != t || cs != s || k0 != next || k1 <= k0 {
                    return fail(format!(
                        "plan.decodeChunks row {c} does not continue token {t}"
                    ));
                }
                next = k1;
            }
            if next != self.seq_len(s) {
                return fail(format!(
                    "plan.decodeItems row {i} covers {next} of {} keys",
                    self.seq_len(s)
                ));
            }
        }
        for i in 0..tiles {
            let [t0, count, s, _] = self.tile(i);
            if s >= n
                || count == 0
                || count > super::tile::MAX_TILE_TOKENS
                || t0 < self.query_start_loc[s] as usize
                || t0 + count > self.query_start_loc[s + 1] as usize
            {
                return fail(format!(
                    "plan.prefillTiles row {i} is outside its sequence or longer than 16 tokens"
                ));
            }
            for c in &mut covered[t0..t0 + count] {
                if *c {
                    return fail(format!("plan.prefillTiles row {i} repeats a token"));
                }
                *c = true;
            }
        }
        match covered.iter().position(|c| !c) {
            Some(t) => fail(format!(
                "query token {t} is in no decode item or prefill tile"
            )),
            None => Ok(()),
        }
    }
}
