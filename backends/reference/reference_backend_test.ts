import assert from "node:assert/strict";
import { planBatch } from "../../core/batch.ts";
import {
  BackendDisposedError,
  BackendShapeError,
} from "../../core/backend_errors.ts";
import { KV_CACHE_DTYPES } from "../../core/dtype.ts";
import type { LayerConfig } from "../../core/layer.ts";
import { mulberry32 } from "../../core/prng.ts";
import { referenceAttention } from "../../core/reference_attention.ts";
import { createReferenceBackend } from "./reference_backend.ts";

const layer: LayerConfig = {
  index: 0,
  kind: "full",
  numQHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  scale: 0.25,
  kvDtype: "fp32",
  blockSize: 4,
};
const scales = { kScale: 1, vScale: 1, kZeroPoint: 0, vZeroPoint: 0 };

function random(rand: () => number, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rand() * 2 - 1);
}

/** Two sequences over shuffled, non-contiguous blocks; returns their K/V and tables. */
function scenario(seed: number, config: LayerConfig) {
  const rand = mulberry32(seed);
  const row = config.numKvHeads * config.headDim;
  const seqLens = [7, 13];
  const tables = [[9, 2], [5, 0, 11, 3]];
  const keys = seqLens.map((n) => random(rand, n * row));
  const values = seqLens.map((n) => random(rand, n * row));
  return { rand, row, seqLens, tables, keys, values };
}

Deno.test("reference backend: written fp32 K/V read back bit-exact and padding slots are skipped", () => {
  const backend = createReferenceBackend();
  const cache = backend.createCache(layer, { numBlocks: 4, scales });
  const row = 32;
  const keys = Float32Array.from({ length: 3 * row }, (_, i) => i + 0.5);
  const values = keys.map((x) => -x);
  backend.write(cache, { keys, values, slotMapping: Int32Array.of(5, -1, 14) });
  const read = backend.readCache!(cache, Int32Array.of(5, 14, 6));
  assert.deepEqual(read.keys.subarray(0, row), keys.subarray(0, row));
  assert.deepEqual(read.keys.subarray(row, 2 * row), keys.subarray(2 * row));
  assert.deepEqual(
    read.values.subarray(row, 2 * row),
    values.subarray(2 * row),
  );
  assert.ok(
    read.keys.subarray(2 * row).every((x) => x === 0),
    "slot 6 was never written",
  );
});

for (const kvDtype of KV_CACHE_DTYPES) {
  Deno.test(`reference backend: attention on a ${kvDtype} cache equals the fp64 oracle on the dequantized cache`, () => {
    const config: LayerConfig = {
      ...layer,
      kvDtype,
      int8Scheme: "per_token_head",
    };
    const s = scenario(11, config);
    const backend = createReferenceBackend();
    const cache = backend.createCache(config, {
      numBlocks: 12,
      scales: kvDtype.startsWith("fp8")
        ? { ...scales, kScale: 0.01, vScale: 0.01 }
        : scales,
    });
    for (let q = 0; q < 2; q++) {
      const slots = Int32Array.from(
        { length: s.seqLens[q] },
        (_, j) => s.tables[q][j >> 2] * 4 + (j & 3),
      );
      backend.write(cache, {
        keys: s.keys[q],
        values: s.values[q],
        slotMapping: slots,
      });
    }
    // Sequence 0 decodes its last token, sequence 1 prefills its last 5.
    const plan = planBatch({
      queryStartLoc: Int32Array.of(0, 1, 6),
      seqLens: Int32Array.from(s.seqLens),
      blockTables: Int32Array.of(9, 2, -1, -1, 5, 0, 11, 3),
      maxBlocksPerSeq: 4,
      blockSize: 4,
    });
    const query = random(s.rand, 6 * 4 * 16);
    const out = new Float32Array(query.length).fill(NaN);
    backend.attend(cache, plan, { query, out });
    const dequantized = s.seqLens.map((n, q) =>
      backend.readCache!(
        cache,
        Int32Array.from({ length: n }, (_, j) =>
          s.tables[q][j >> 2] * 4 + (j & 3)),
      )
    );
    const oracle = referenceAttention(config, {
      batch: plan,
      query,
      keys: dequantized.map((d) => d.keys),
      values: dequantized.map((d) => d.values),
    });
    oracle.out.forEach((want, i) =>
      assert.equal(out[i], Math.fround(want), `element ${i}`)
    );
    // The quantization error against the original K/V stays within each
    // format's resolution (loose: a smoke check, conformance owns the bounds).
    const original = referenceAttention(config, {
      batch: plan,
      query,
      keys: s.keys,
      values: s.values,
    });
    const bound = {
      fp32: 1e-6,
      fp16: 1e-3,
      bf16: 1e-2,
      fp8_e4m3: 0.1,
      fp8_e5m2: 0.2,
      int8: 0.05,
    }[kvDtype];
    original.out.forEach((want, i) =>
      assert.ok(
        Math.abs(out[i] - want) < bound,
        `${kvDtype} element ${i}: ${out[i]} vs ${want}`,
      )
    );
  });
}

Deno.test("reference backend: copyBlocks copies codes and per-token scales", () => {
  const config: LayerConfig = {
    ...layer,
    kvDtype: "int8",
    int8Scheme: "per_token_head",
  };
  const backend = createReferenceBackend();
  const cache = backend.createCache(config, { numBlocks: 3, scales });
  const rand = mulberry32(3);
  const keys = random(rand, 4 * 32), values = random(rand, 4 * 32);
  backend.write(cache, {
    keys,
    values,
    slotMapping: Int32Array.of(0, 1, 2, 3),
  });
  backend.copyBlocks(cache, Int32Array.of(0, 2));
  const a = backend.readCache!(cache, Int32Array.of(0, 1, 2, 3));
  const b = backend.readCache!(cache, Int32Array.of(8, 9, 10, 11));
  assert.deepEqual(b, a);
});

Deno.test("reference backend: bad slots, bad pairs and use after dispose are clear errors", () => {
  const backend = createReferenceBackend();
  const cache = backend.createCache(layer, { numBlocks: 2, scales });
  const row = new Float32Array(32);
  assert.throws(
    () =>
      backend.write(cache, {
        keys: row,
        values: row,
        slotMapping: Int32Array.of(8),
      }),
    /slotMapping\[0\] is 8, outside the cache's 8 slots \(2 blocks of 4\): use -1 for padding/,
  );
  assert.throws(
    () =>
      backend.write(cache, {
        keys: row,
        values: row,
        slotMapping: Int32Array.of(0, 1),
      }),
    /keys has 32 elements, expected 64/,
  );
  assert.throws(
    () => backend.copyBlocks(cache, Int32Array.of(0, 2)),
    /Block 2 in pairs\[0\.\.1\] is outside 0\.\.1/,
  );
  assert.throws(
    () => backend.createCache(layer, { numBlocks: 0, scales }),
    /numBlocks must be a positive integer, got 0/,
  );
  backend.dispose();
  assert.throws(
    () => backend.readCache!(cache, Int32Array.of(0)),
    /Backend reference was disposed/,
  );
});

Deno.test("reference backend: bad inputs are BackendShapeErrors naming the layer, use after dispose a BackendDisposedError", () => {
  const backend = createReferenceBackend();
  const cache = backend.createCache(layer, { numBlocks: 2, scales });
  const shapeError = (e: unknown) =>
    e instanceof BackendShapeError && e.backend === "reference" &&
    e.target === "reference" && e.layer === layer.index;
  const row = new Float32Array(32);
  assert.throws(
    () =>
      backend.write(cache, {
        keys: row,
        values: row,
        slotMapping: Int32Array.of(8),
      }),
    shapeError,
  );
  assert.throws(() => backend.copyBlocks(cache, Int32Array.of(0)), shapeError);
  assert.throws(() => backend.readCache!(cache, Int32Array.of(-1)), shapeError);
  const plan = planBatch({
    queryStartLoc: Int32Array.of(0, 1),
    seqLens: Int32Array.of(1),
    blockTables: Int32Array.of(2),
    maxBlocksPerSeq: 1,
    blockSize: layer.blockSize,
  });
  const q = new Float32Array(layer.numQHeads * layer.headDim);
  assert.throws(
    () => backend.attend(cache, plan, { query: q, out: q.slice() }),
    (e) =>
      shapeError(e) &&
      /blockTables\[0\]\[0\] is 2, outside the cache's 2 blocks/.test(
        (e as Error).message,
      ),
  );
  backend.dispose();
  assert.throws(
    () => backend.copyBlocks(cache, Int32Array.of()),
    (e) =>
      e instanceof BackendDisposedError && e.name === "BackendDisposedError",
  );
});

Deno.test("reference backend: a batch planned for another block size is refused", () => {
  const backend = createReferenceBackend();
  const cache = backend.createCache(layer, { numBlocks: 2, scales });
  const plan = planBatch({
    queryStartLoc: Int32Array.of(0, 1),
    seqLens: Int32Array.of(1),
    blockTables: Int32Array.of(0),
    maxBlocksPerSeq: 1,
    blockSize: 16,
  });
  assert.throws(
    () =>
      backend.attend(cache, plan, {
        query: new Float32Array(64),
        out: new Float32Array(64),
      }),
    /planned for block size 16 but layer 0's cache uses 4/,
  );
});
