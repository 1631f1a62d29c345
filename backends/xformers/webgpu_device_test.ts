import assert from "node:assert/strict";
import { planBatch } from "../../core/batch.ts";
import { mulberry32 } from "../../core/prng.ts";
import { createBufferFrom, readBuffer } from "../../webgpu/mod.ts";
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

Deno.test({
  name: named(
    "encodeAttend() records attention at buffer offsets that matches the fp64 oracle and leaves the rest of the output buffer alone",
  ),
  ignore,
  async fn() {
    const b = await sharedBackend();
    const config = layerOf({
      numQHeads: 8,
      numKvHeads: 2,
      headDim: 64,
      kvDtype: "int8",
      int8Scheme: "per_token_head",
    });
    const rand = mulberry32(11);
    const seqLens = [40, 1, 70], queryLens = [1, 1, 6];
    const perSeq = seqLens.map((n) => Math.ceil(n / config.blockSize));
    const maxBlocks = Math.max(...perSeq);
    const numBlocks = seqLens.length * maxBlocks;
    const cache = await b.createCache(config, {
      numBlocks,
      scales: scalesFor(config),
    });
    const row = config.numKvHeads * config.headDim;
    const slots = seqLens.map((n, s) =>
      Int32Array.from({ length: n }, (_, j) => s * maxBlocks * 16 + j)
    );
    for (const sl of slots) {
      const kv = () => randomArray(rand, sl.length * row);
      b.write(cache, { keys: kv(), values: kv(), slotMapping: sl });
    }
    const qsl = Int32Array.from([0, ...queryLens]);
    for (let s = 1; s < qsl.length; s++) qsl[s] += qsl[s - 1];
    const plan = planBatch({
      queryStartLoc: qsl,
      seqLens: Int32Array.from(seqLens),
      blockTables: Int32Array.from(
        { length: numBlocks },
        (_, i) => i,
      ),
      maxBlocksPerSeq: maxBlocks,
      blockSize: config.blockSize,
    });
    const query = randomArray(rand, plan.numTokens * 8 * 64);
    const at = b.device.limits.minStorageBufferOffsetAlignment;
    const padded = new Float32Array(at / 4 + query.length);
    padded.set(query, at / 4);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
    const q = createBufferFrom(b.device, padded, usage);
    const outHost = new Float32Array(padded.length + 16).fill(-7);
    const out = createBufferFrom(b.device, outHost, usage);
    const encoder = b.device.createCommandEncoder();
    const io = { query: q, queryOffset: at, out, outOffset: at };
    const work = b.encodeAttend(encoder, cache, plan, io);
    b.device.queue.submit([encoder.finish()]);
    const got = new Float32Array(
      await readBuffer(b.device, out, 0, outHost.byteLength),
    );
    work.release();
    const expected = await oracleOnReadback(b, cache, plan, query, slots);
    for (let i = 0; i < query.length; i++) {
      const err = Math.abs(got[at / 4 + i] - expected[i]);
      assert.ok(
        err <= 2e-3,
        `element ${i}: ${got[at / 4 + i]} vs ${expected[i]}`,
      );
    }
    assert.ok(got.subarray(0, at / 4).every((x) => x === -7));
    assert.ok(got.subarray(at / 4 + query.length).every((x) => x === -7));
    assert.throws(
      () =>
        b.encodeAttend(encoder, cache, plan, {
          query: q,
          out,
          outOffset: 2 * at,
        }),
      /io\.out holds \d+ bytes past offset \d+ but the batch needs \d+/,
    );
    q.destroy();
    out.destroy();
    b.disposeCache(cache);
  },
});
