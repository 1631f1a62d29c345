// DeviceResidentAttention on fa3: two layers recorded into one command
// encoder, Q read from and the output written to GPU buffers at offsets,
// one submission and one read-back at the end; each layer's output must
// equal attend()'s bit for bit (attend() is the same recording plus a
// read-back). Bad buffers are refused before anything is recorded.
import assert from "node:assert/strict";
import { planBatch } from "../../core/batch.ts";
import type { LayerConfig } from "../../core/layer.ts";
import { mulberry32 } from "../../core/prng.ts";
import { estimateScales } from "../../core/scales.ts";
import { createBufferFrom, isDeviceResident } from "../../webgpu/mod.ts";
import { createFa3WebGpuBackend } from "./webgpu_backend.ts";
import { layerOf, named, SKIP_REASON } from "./webgpu_test_support.ts";

const ignore = SKIP_REASON !== undefined;

// A decode of 2500 keys (two passes) and a 5-token prefill after 40.
const SEQ_LENS = [2500, 45];
const QUERY_LENS = [1, 5];
const BLOCK = 16;

async function setUp() {
  const backend = await createFa3WebGpuBackend();
  const rand = mulberry32(9);
  const layers: LayerConfig[] = [
    layerOf({ kvDtype: "fp8_e4m3", blockSize: BLOCK }),
    layerOf({
      index: 1,
      kvDtype: "int8",
      int8Scheme: "per_token_head",
      kind: "sliding_window",
      slidingWindow: 100,
      blockSize: BLOCK,
    }),
  ];
  const need = SEQ_LENS.map((n) => Math.ceil(n / BLOCK));
  const width = Math.max(...need);
  const tables = new Int32Array(SEQ_LENS.length * width).fill(-1);
  let next = 0;
  need.forEach((n, s) => {
    for (let b = 0; b < n; b++) tables[s * width + b] = next++;
  });
  const slots = Int32Array.from(
    SEQ_LENS.flatMap((n, s) =>
      Array.from(
        { length: n },
        (_, j) => tables[s * width + Math.floor(j / BLOCK)] * BLOCK + j % BLOCK,
      )
    ),
  );
  const caches = [];
  for (const layer of layers) {
    const row = layer.numKvHeads * layer.headDim;
    const data = () =>
      Float32Array.from({ length: slots.length * row }, () => rand() * 2 - 1);
    const keys = data(), values = data();
    const cache = await backend.createCache(layer, {
      numBlocks: next,
      scales: estimateScales(keys, values, layer.kvDtype),
    });
    backend.write(cache, { keys, values, slotMapping: slots });
    caches.push(cache);
  }
  const plan = backend.plan(planBatch({
    queryStartLoc: Int32Array.of(
      0,
      ...QUERY_LENS.map((_, i) =>
        QUERY_LENS.slice(0, i + 1).reduce((a, b) => a + b, 0)
      ),
    ),
    seqLens: Int32Array.from(SEQ_LENS),
    blockTables: tables,
    maxBlocksPerSeq: width,
    blockSize: BLOCK,
  }));
  const n = plan.numTokens * layers[0].numQHeads * layers[0].headDim;
  const query = Float32Array.from({ length: n }, () => rand() * 6 - 3);
  return { backend, caches, plan, query };
}

Deno.test({
  name: named(
    "encodeAttend() records two layers into one encoder, reads back once, and equals attend() bit for bit",
  ),
  ignore,
  async fn() {
    const { backend, caches, plan, query } = await setUp();
    assert.ok(isDeviceResident(backend));
    const { device } = backend;
    const offset = device.limits.minStorageBufferOffsetAlignment;
    const bytes = query.byteLength;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
    const padded = new Float32Array(offset / 4 + query.length).fill(NaN);
    padded.set(query, offset / 4);
    const q = createBufferFrom(device, padded, usage);
    const out = device.createBuffer({ size: offset + 2 * bytes, usage });
    const staging = device.createBuffer({
      size: 2 * bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const encoder = device.createCommandEncoder();
    const work = caches.map((cache, i) =>
      backend.encodeAttend(encoder, cache, plan, {
        query: q,
        queryOffset: offset,
        out,
        outOffset: offset + i * bytes,
      })
    );
    encoder.copyBufferToBuffer(out, offset, staging, 0, 2 * bytes);
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    work.forEach((w) => w.release());
    await staging.mapAsync(GPUMapMode.READ);
    const recorded = new Float32Array(staging.getMappedRange().slice(0));
    staging.destroy(), q.destroy(), out.destroy();
    for (const [i, cache] of caches.entries()) {
      const expected = new Float32Array(query.length).fill(NaN);
      await backend.attend(cache, plan, { query, out: expected });
      assert.ok(expected.every(Number.isFinite), `layer ${i}: attend() NaN`);
      assert.deepEqual(
        new Uint32Array(recorded.buffer, i * bytes, query.length),
        new Uint32Array(expected.buffer),
        `layer ${i}`,
      );
    }
    backend.dispose();
  },
});

Deno.test({
  name: named(
    "encodeAttend() refuses a misaligned offset, a buffer too small and one without STORAGE usage",
  ),
  ignore,
  async fn() {
    const { backend, caches, plan, query } = await setUp();
    const { device } = backend;
    const usage = GPUBufferUsage.STORAGE;
    const q = createBufferFrom(device, query, usage);
    const small = device.createBuffer({ size: query.byteLength - 4, usage });
    const encoder = device.createCommandEncoder();
    assert.throws(
      () =>
        backend.encodeAttend(encoder, caches[0], plan, {
          query: q,
          out: small,
        }),
      /io\.out holds \d+ bytes but the batch needs \d+ from offset 0/,
    );
    assert.throws(
      () =>
        backend.encodeAttend(encoder, caches[0], plan, {
          query: q,
          out: q,
          outOffset: 4,
        }),
      /io\.outOffset is 4, not a multiple of this device's minStorageBufferOffsetAlignment/,
    );
    const copyOnly = device.createBuffer({
      size: query.byteLength,
      usage: GPUBufferUsage.COPY_DST,
    });
    assert.throws(
      () =>
        backend.encodeAttend(encoder, caches[0], plan, {
          query: q,
          out: copyOnly,
        }),
      /io\.out was created without GPUBufferUsage\.STORAGE: add it/,
    );
    encoder.finish();
    q.destroy(), small.destroy(), copyOnly.destroy();
    backend.dispose();
  },
});
