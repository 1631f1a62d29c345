// FlashInfer's plan step: page tables and the split-KV partition are built
// from the batch alone (no layer), once, and every layer's attend() reuses
// them; attend() refuses plans from elsewhere. Checked against the fp64
// oracle only.
import assert from "node:assert/strict";
import { planBatch } from "../../core/batch.ts";
import { mulberry32 } from "../../core/prng.ts";
import { chunkKeysFor, planMetadata } from "./webgpu_plan.ts";
import { createFlashinferWebGpuBackend } from "./webgpu_backend.ts";
import {
  layerOf,
  named,
  randomArray,
  scalesFor,
  sharedBackend,
  SKIP_REASON,
} from "./webgpu_test_support.ts";
import { oracleOnReadback } from "../../webgpu/test_support.ts";

const ignore = SKIP_REASON !== undefined;

// One decode of 40 keys, one prefill of 3 tokens over 18 keys; pages of 16.
const BATCH = planBatch({
  queryStartLoc: Int32Array.of(0, 1, 4),
  seqLens: Int32Array.of(40, 18),
  blockTables: Int32Array.of(7, 2, 9, 4, 0, -1),
  maxBlocksPerSeq: 3,
  blockSize: 16,
});

Deno.test("planMetadata() builds indptr, indices and last_page_len", () => {
  const m = planMetadata(BATCH);
  assert.deepEqual([...m.kvIndptr], [0, 3, 5]);
  assert.deepEqual([...m.kvIndices], [7, 2, 9, 4, 0]);
  assert.deepEqual([...m.kvLastPageLen], [8, 2]);
  assert.equal(m.maxPageId, 9);
  // Prefill tile: first token 1, 3 tokens, sequence 1, first position 15.
  assert.deepEqual([...m.prefillTiles], [1, 3, 1, 15]);
  assert.equal(m.prefillEnd, 18);
});

Deno.test("planMetadata() cuts decode keys into page-aligned chunks", () => {
  const m = planMetadata(BATCH, 16);
  assert.equal(m.chunkKeys, 16);
  assert.deepEqual([...m.decodeChunks], [
    ...[0, 0, 0, 16],
    ...[0, 0, 16, 32],
    ...[0, 0, 32, 40],
  ]);
  assert.deepEqual([...m.decodeItems], [0, 0, 3]); // token 0, chunks 0..2
});

Deno.test("chunkKeysFor() parallelizes long contexts within the loop bound", () => {
  assert.equal(chunkKeysFor(40, 16), 64); // short: one chunk
  assert.equal(chunkKeysFor(4500, 16), 64); // ~71 chunks
  assert.equal(chunkKeysFor(32768, 16), 128); // 256 chunks
  assert.equal(chunkKeysFor(262144, 16), 512); // capped: 512 chunks
  assert.equal(chunkKeysFor(1 << 20, 64), 512); // the cap, whole pages
  assert.equal(chunkKeysFor(100, 64, 16), 64); // never below one page
});

Deno.test({
  name: named(
    "one plan serves two layers of different dtypes and windows (fp8_e4m3 sliding, int8 per_token_head full)",
  ),
  ignore,
  async fn() {
    const b = await sharedBackend();
    const rand = mulberry32(11);
    const layers = [
      layerOf({
        index: 0,
        kvDtype: "fp8_e4m3",
        kind: "sliding_window",
        slidingWindow: 9,
        softCap: 3,
      }),
      layerOf({
        index: 1,
        kvDtype: "int8",
        int8Scheme: "per_token_head",
        numQHeads: 8,
        numKvHeads: 1,
      }),
    ];
    const plan = b.plan(BATCH);
    for (const config of layers) {
      const cache = await b.createCache(config, {
        numBlocks: 10,
        scales: scalesFor(config),
      });
      const row = config.numKvHeads * config.headDim;
      const slots = Int32Array.from({ length: 160 }, (_, i) => i);
      const kv = () => randomArray(rand, 160 * row);
      b.write(cache, { keys: kv(), values: kv(), slotMapping: slots });
      const query = randomArray(rand, 4 * config.numQHeads * config.headDim);
      const out = new Float32Array(query.length).fill(NaN);
      await b.attend(cache, plan, { query, out });
      const seqSlots = [0, 1].map((s) =>
        Int32Array.from(
          { length: BATCH.seqLens[s] },
          (_, j) => plan.kvIndices[plan.kvIndptr[s] + (j >> 4)] * 16 + j % 16,
        )
      );
      const expected = await oracleOnReadback(b, cache, BATCH, query, seqSlots);
      out.forEach((v, i) =>
        assert.ok(
          Math.abs(v - expected[i]) <= 2e-3,
          `layer ${config.index} [${i}]: ${v} vs ${expected[i]}`,
        )
      );
      b.disposeCache(cache);
    }
  },
});

Deno.test({
  name: named(
    "attend() refuses a plan from another instance, the core plan, and a plan for another block size",
  ),
  ignore,
  async fn() {
    const a = await sharedBackend();
    const other = await createFlashinferWebGpuBackend();
    // The plans are right for this cache's block size, so what is refused
    // is their provenance (the backend's check, after the core guard's).
    const config = layerOf({ blockSize: BATCH.blockSize });
    const cache = await a.createCache(config, {
      numBlocks: 10,
      scales: scalesFor(config),
    });
    const n = BATCH.numTokens * config.numQHeads * config.headDim;
    const io = { query: new Float32Array(n), out: new Float32Array(n) };
    await assert.rejects(
      () => a.attend(cache, other.plan(BATCH), io),
      /not made by this backend instance/,
    );
    await assert.rejects(
      () => a.attend(cache, BATCH as never, io),
      /not made by this backend instance/,
    );
    // A plan for another block size: the core guard's shape check.
    const config32 = layerOf({ blockSize: 32 });
    const cache32 = await a.createCache(config32, {
      numBlocks: 10,
      scales: scalesFor(config32),
    });
    await assert.rejects(
      () => a.attend(cache32, a.plan(BATCH), io),
      /planned for block size 16 but layer 0's cache uses 32/,
    );
    other.dispose();
    assert.throws(() => other.plan(BATCH), /disposed/);
    a.disposeCache(cache);
    a.disposeCache(cache32);
  },
});
