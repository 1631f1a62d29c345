// The xformers WebGPU target's contract edges: clear errors before anything
// reaches the GPU, disposal, and the definition's webgpu target as the
// registry sees it (probe, then create).
import assert from "node:assert/strict";
import { planBatch } from "../../core/batch.ts";
import { BackendError, BackendShapeError } from "../../core/backend_errors.ts";
import { UnsupportedLayerError } from "../../core/capabilities.ts";
import definition from "./mod.ts";
import { createXformersWebGpuBackend } from "./webgpu_backend.ts";
import {
  layerOf,
  named,
  scalesFor,
  sharedBackend,
  SKIP_REASON,
} from "./webgpu_test_support.ts";

const ignore = SKIP_REASON !== undefined;
const scales = { kScale: 1, vScale: 1, kZeroPoint: 0, vZeroPoint: 0 };

/** A BackendShapeError naming xformers on webgpu, layer 0, matching `re`. */
const shapeError = (re: RegExp) => (e: Error) =>
  e instanceof BackendShapeError && e.backend === "xformers" &&
  e.target === "webgpu" && e.layer === 0 && re.test(e.message);

Deno.test({
  name: named(
    "WebGPU xformers refuses bad slots, lengths, block ids and layers with clear errors",
  ),
  ignore,
  fn: async () => {
    const b = await sharedBackend();
    const layer = layerOf({});
    const cache = await b.createCache(layer, { numBlocks: 2, scales });
    const row = new Float32Array(128);
    assert.throws(
      () =>
        b.write(cache, {
          keys: row,
          values: row,
          slotMapping: Int32Array.of(32),
        }),
      shapeError(
        /slotMapping\[0\] is 32, outside the cache's 32 slots \(2 blocks of 16\): use -1 for padding/,
      ),
    );
    assert.throws(
      () =>
        b.write(cache, {
          keys: row,
          values: row,
          slotMapping: Int32Array.of(0, 1),
        }),
      shapeError(/keys has 128 elements, expected 256/),
    );
    assert.throws(
      () => b.copyBlocks(cache, Int32Array.of(0, 2)),
      shapeError(/Block 2 in pairs\[0\.\.1\] is outside 0\.\.1/),
    );
    assert.throws(
      () => b.copyBlocks(cache, Int32Array.of(0)),
      shapeError(/odd length 1/),
    );
    await assert.rejects(
      b.readCache(cache, Int32Array.of(-1)),
      shapeError(/slots\[0\] is -1, outside/),
    );
    const plan = (blockSize: number, block: number) =>
      planBatch({
        queryStartLoc: Int32Array.of(0, 1),
        seqLens: Int32Array.of(1),
        blockTables: Int32Array.of(block),
        maxBlocksPerSeq: 1,
        blockSize,
      });
    const io = { query: new Float32Array(256), out: new Float32Array(256) };
    await assert.rejects(
      async () => await b.attend(cache, plan(8, 0), io),
      shapeError(/planned for block size 8 but layer 0's cache uses 16/),
    );
    await assert.rejects(
      async () => await b.attend(cache, plan(16, 5), io),
      shapeError(/blockTables\[0\]\[0\] is 5, outside the cache's 2 blocks/),
    );
    await assert.rejects(
      b.createCache(layerOf({ softCap: 30, headDim: 260 }), {
        numBlocks: 1,
        scales,
      }),
      (e: Error) =>
        e instanceof UnsupportedLayerError &&
        /Backend xformers cannot serve layer 0: head_dim 260 is not supported .*; logit soft-cap \(30\) is not supported/
          .test(e.message),
    );
    await assert.rejects(
      b.createCache(layer, { numBlocks: 0, scales }),
      /numBlocks must be a positive integer, got 0/,
    );
    await assert.rejects(
      b.createCache(layer, { numBlocks: 2 ** 30, scales }),
      /binds at most \d+ bytes per buffer: use at most \d+ blocks/,
    );
    b.disposeCache(cache);
    assert.throws(
      () => b.copyBlocks(cache, Int32Array.of(0, 1)),
      /Layer 0's cache was released by xformers/,
    );
  },
});

Deno.test({
  name: named(
    "a write() that fails on the GPU is reported by the next read-back, not silently lost",
  ),
  ignore,
  fn: async () => {
    const b = await sharedBackend();
    const cache = await b.createCache(layerOf({}), { numBlocks: 1, scales });
    cache.vCodes.destroy(); // the write's submission is then invalid
    b.write(cache, {
      keys: new Float32Array(128),
      values: new Float32Array(128),
      slotMapping: Int32Array.of(0),
    });
    await assert.rejects(
      b.readCodes(cache, Int32Array.of(0)),
      (e: Error) =>
        e instanceof BackendError && !(e instanceof BackendShapeError) &&
        e.layer === 0 &&
        /An earlier write\(\): .+ \(layer 0's cache; 1 failed submission\(s\) in all\)/
          .test(e.message),
    );
    b.disposeCache(cache);
  },
});

Deno.test({
  name: named(
    "a disposed WebGPU xformers backend refuses further use and frees its caches",
  ),
  ignore,
  fn: async () => {
    const b = await createXformersWebGpuBackend();
    const config = layerOf({ kvDtype: "fp8_e5m2" });
    const cache = await b.createCache(config, {
      numBlocks: 1,
      scales: scalesFor(config),
    });
    b.dispose();
    assert.ok(cache.destroyed);
    assert.throws(
      () =>
        b.write(cache, {
          keys: new Float32Array(0),
          values: new Float32Array(0),
          slotMapping: new Int32Array(0),
        }),
      /Backend xformers was disposed: create a new instance/,
    );
  },
});

Deno.test({
  name: named(
    "the xformers definition's webgpu target probes available here and serves attention",
  ),
  ignore,
  fn: async () => {
    const target = definition.targets.find((t) => t.target === "webgpu")!;
    const probe = await target.probe();
    assert.ok(probe.available, "available");
    assert.match(probe.detail!, /^WebGPU adapter ".+"/);
    const b = await target.create();
    const config = layerOf({ numQHeads: 2, numKvHeads: 1, headDim: 8 });
    const cache = await b.createCache(config, { numBlocks: 1, scales });
    b.write(cache, {
      keys: Float32Array.of(1, 0, 0, 0, 0, 0, 0, 0),
      values: Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8),
      slotMapping: Int32Array.of(3),
    });
    const out = new Float32Array(16).fill(NaN);
    await b.attend(
      cache,
      planBatch({
        queryStartLoc: Int32Array.of(0, 1),
        seqLens: Int32Array.of(4),
        blockTables: Int32Array.of(0),
        maxBlocksPerSeq: 1,
        blockSize: 16,
      }),
      { query: new Float32Array(16).fill(0.5), out },
    );
    // Slots 0..2 were never written (zeros): softmax over logits 0, 0, 0 and
    // 0.5 * 1 / sqrt(8), then V is 0 except for slot 3.
    const w = Math.exp(0.5 / Math.sqrt(8));
    const p = w / (3 + w);
    out.forEach((x, i) =>
      assert.ok(Math.abs(x - p * ((i % 8) + 1)) < 1e-6, `out[${i}] = ${x}`)
    );
    await b.dispose();
  },
});
