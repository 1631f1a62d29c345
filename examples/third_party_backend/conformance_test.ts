// The conformance suite against tiled_ts, registered from our own test file
// as any third party would, plus checks of what only this backend knows:
// its layout, its plan, its released caches, its softmax state.
import assert from "node:assert/strict";
import {
  BackendDisposedError,
  BackendShapeError,
  DEFAULT_SCALES,
  ForeignHandleError,
  type LayerConfig,
  planBatch,
} from "../../mod.ts";
import { registerConformanceTests } from "../../conformance/mod.ts";
import tiledTs, { createTiledBackend, OnlineSoftmax } from "./mod.ts";

// One Deno test per case, named by its address; skipped cases show as
// ignored with the reason. The long tier (32k tokens, a 2^31-element cache)
// is left to `deno task conformance --long`.
await registerConformanceTests(tiledTs, { long: false });

const layer: LayerConfig = {
  index: 0,
  kind: "full",
  numQHeads: 4,
  numKvHeads: 2,
  headDim: 8,
  scale: 8 ** -0.5,
  kvDtype: "fp32",
  blockSize: 8,
};

Deno.test("tiled_ts stores each (block, kv head) tile contiguously", () => {
  const backend = createTiledBackend();
  const cache = backend.createCache(layer, {
    numBlocks: 4,
    scales: DEFAULT_SCALES,
  });
  const keys = new Float32Array(16).fill(1, 0, 8).fill(2, 8, 16);
  // Slot 19 is block 2, offset 3.
  backend.write(cache, { keys, values: keys, slotMapping: Int32Array.of(19) });
  // Head 1 of block 2 starts at row (2 * numKvHeads + 1) * blockSize.
  const at = ((2 * 2 + 1) * 8 + 3) * 8;
  assert.deepEqual([...cache.keys.subarray(at, at + 8)], new Array(8).fill(2));
});

Deno.test("tiled_ts refuses a plan that did not come from its own plan()", () => {
  const backend = createTiledBackend();
  const cache = backend.createCache(layer, {
    numBlocks: 1,
    scales: DEFAULT_SCALES,
  });
  const batch = planBatch({
    queryStartLoc: Int32Array.of(0, 1),
    seqLens: Int32Array.of(1),
    blockTables: Int32Array.of(0),
    maxBlocksPerSeq: 1,
    blockSize: 8,
  });
  const io = { query: new Float32Array(32), out: new Float32Array(32) };
  assert.throws(
    () => backend.attend(cache, batch as never, io),
    (e) =>
      e instanceof ForeignHandleError && e.backend === "tiled_ts" &&
      /needs the plan from its own plan\(\): call backend\.plan/.test(
        e.message,
      ),
  );
  backend.attend(cache, backend.plan!(batch), io);
});

Deno.test("tiled_ts copyBlocks carries int8 per-token-head scales with the codes", () => {
  const config: LayerConfig = {
    ...layer,
    kvDtype: "int8",
    int8Scheme: "per_token_head",
  };
  const backend = createTiledBackend();
  const cache = backend.createCache(config, {
    numBlocks: 2,
    scales: DEFAULT_SCALES,
  });
  const keys = Float32Array.from(
    { length: 8 * 16 },
    (_, i) => Math.sin(i) * (1 + (i >> 4)),
  );
  const slots = Int32Array.from({ length: 8 }, (_, i) => i);
  backend.write(cache, { keys, values: keys, slotMapping: slots });
  backend.copyBlocks(cache, Int32Array.of(0, 1));
  const copied = backend.readCache!(cache, slots.map((s) => s + 8));
  assert.deepEqual(copied, backend.readCache!(cache, slots));
});

Deno.test("tiled_ts refuses a cache released by disposeCache() and every call after dispose()", () => {
  const backend = createTiledBackend();
  const cache = backend.createCache(layer, {
    numBlocks: 1,
    scales: DEFAULT_SCALES,
  });
  backend.disposeCache!(cache);
  assert.throws(
    () => backend.readCache!(cache, Int32Array.of(0)),
    (e) =>
      e instanceof ForeignHandleError &&
      /released by disposeCache\(\)/.test(e.message),
  );
  backend.dispose();
  assert.throws(
    () => backend.createCache(layer, { numBlocks: 1, scales: DEFAULT_SCALES }),
    (e) =>
      e instanceof BackendDisposedError &&
      /Backend tiled_ts was disposed: create a new instance/.test(e.message),
  );
});

Deno.test("tiled_ts refuses bad shapes with BackendShapeError naming the backend, target and layer", () => {
  const backend = createTiledBackend();
  const cache = backend.createCache({ ...layer, index: 3 }, {
    numBlocks: 1,
    scales: DEFAULT_SCALES,
  });
  const shapeError = (message: RegExp) => (e: unknown) =>
    e instanceof BackendShapeError && e.backend === "tiled_ts" &&
    e.target === "reference" && e.layer === 3 && message.test(e.message);
  const row = new Float32Array(16);
  assert.throws(
    () =>
      backend.write(cache, {
        keys: row,
        values: row,
        slotMapping: Int32Array.of(8),
      }),
    shapeError(/slotMapping\[0\] is 8, outside the cache's 8 slots/),
  );
  assert.throws(
    () =>
      backend.write(cache, {
        keys: new Float32Array(8),
        values: row,
        slotMapping: Int32Array.of(0),
      }),
    shapeError(/keys has 8 elements, expected 16/),
  );
  assert.throws(
    () => backend.copyBlocks(cache, Int32Array.of(0, 1)),
    shapeError(/Block 1 in pairs\[0\.\.1\] is outside 0\.\.0/),
  );
  assert.throws(
    () => backend.readCache!(cache, Int32Array.of(-1)),
    shapeError(/slots\[0\] is -1/),
  );
  const plan = backend.plan!(planBatch({
    queryStartLoc: Int32Array.of(0, 1),
    seqLens: Int32Array.of(1),
    blockTables: Int32Array.of(0),
    maxBlocksPerSeq: 1,
    blockSize: 8,
  }));
  assert.throws(
    () =>
      backend.attend(cache, plan, {
        query: new Float32Array(31),
        out: new Float32Array(32),
      }),
    shapeError(/query has 31 elements, expected 32/),
  );
});

Deno.test("OnlineSoftmax folded tile by tile equals the softmax computed in one go", () => {
  const logits = Float32Array.of(0.5, -1, 3, 2, -0.25);
  const values = Float32Array.of(1, 10, 100, 1000, 10000); // headDim 1
  const state = new OnlineSoftmax(1, 1);
  state.fold(0, logits, values, 0, 2); // a tile whose max is later beaten
  state.fold(0, logits, values, 2, 5);
  const out = new Float32Array(1);
  state.normalize(0, out, 0);
  const p = [...logits].map((x) => Math.exp(x));
  const want = p.reduce((a, w, j) => a + w * values[j], 0) /
    p.reduce((a, w) => a + w, 0);
  assert.ok(Math.abs(out[0] - want) <= 1e-6 * want, `${out[0]} vs ${want}`);
});
