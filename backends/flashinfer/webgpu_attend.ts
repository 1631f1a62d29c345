/**
 * Paged attention on the GPU for one planned batch, all recorded into one
 * command encoder with one read-back:
 *
 * 1. decode_split.wgsl: per (kv head, fused query-head slice, KV chunk of a
 *    decode token), the chunk's partial output and softmax state;
 * 2. decode_reduce.wgsl: per (query head, decode token), the log-sum-exp
 *    merge of its chunks into the output;
 * 3. prefill.wgsl: per (kv head, packed row block, query tile), in passes
 *    of PREFILL_KEYS_PER_PASS keys that carry the softmax state.
 *
 * The kernels write disjoint rows of one output buffer.
 * {@linkcode encodePaged} records this into a caller's encoder with Q and
 * the output on the device (DeviceResidentAttention); {@linkcode attendPaged}
 * uploads Q, records through it and reads back once.
 *
 * @module
 */

import type { AttendInput } from "../../core/backend.ts";
import {
  type DeviceAttendIo,
  type DeviceWork,
  packParams,
  type ParamField,
  Submission,
  webGpuBackendError,
  webGpuShapeError,
} from "../../webgpu/mod.ts";
import type { FlashinferCache } from "./webgpu_cache.ts";
import { checkLength } from "../../webgpu/hnd_cache_ops.ts";
import { decodeShape, PREFILL_KEYS_PER_PASS } from "./webgpu_kernels.ts";
import type { FlashinferPlan } from "./webgpu_plan.ts";

/** Throws on anything the GPU must never see: page size, page ids, grids. */
function checkPlan(cache: FlashinferCache, plan: FlashinferPlan): void {
  const { config, device } = cache;
  if (plan.pageSize !== config.blockSize) {
    throw webGpuShapeError(
      cache,
      `The plan was made for page size ${plan.pageSize} but layer ${config.index}'s cache uses block size ${config.blockSize}: plan the batch with blockSize ${config.blockSize}`,
    );
  }
  if (plan.maxPageId >= cache.numBlocks) {
    throw webGpuShapeError(
      cache,
      `The plan uses block ${plan.maxPageId}, outside layer ${config.index}'s ${cache.numBlocks} blocks (0..${
        cache.numBlocks - 1
      })`,
    );
  }
  const maxDim = device.limits.maxComputeWorkgroupsPerDimension;
  const grids = {
    "split-KV chunks": plan.decodeChunks.length / 4,
    "prefill tiles": plan.prefillTiles.length / 4,
    "decode tokens": plan.decodeItems.length / 3,
  };
  for (const [what, n] of Object.entries(grids)) {
    if (n > maxDim) {
      throw webGpuShapeError(
        cache,
        `The batch has ${n} ${what} but one WebGPU dispatch holds at most ${maxDim}: split the batch`,
      );
    }
  }
}

/** Scratch sizes, refused when one binding could not hold them. */
function scratchBytes(
  cache: FlashinferCache,
  plan: FlashinferPlan,
  passes: number,
) {
  const { numQHeads, headDim } = cache.config;
  const numChunks = plan.decodeChunks.length / 4;
  const sizes = {
    out: plan.numTokens * numQHeads * headDim * 4,
    "split-KV partial outputs": numChunks * numQHeads * headDim * 4,
    "split-KV states": numChunks * numQHeads * 8,
    "prefill state": passes > 1
      ? plan.numTokens * numQHeads * (1 + headDim / 4) * 16
      : 16,
  };
  const max = cache.device.limits.maxStorageBufferBindingSize;
  for (const [what, n] of Object.entries(sizes)) {
    if (n > max) {
      throw webGpuShapeError(
        cache,
        `The batch's ${what} take ${n} bytes but this WebGPU device binds at most ${max} bytes per buffer: split the batch`,
      );
    }
  }
  return sizes;
}

/** Throws when a device buffer, past its offset, is smaller than `bytes`. */
function checkBuffer(
  cache: FlashinferCache,
  what: string,
  buffer: GPUBuffer,
  offset: number,
  bytes: number,
): void {
  if (buffer.size - offset < bytes) {
    throw webGpuShapeError(
      cache,
      `io.${what} holds ${
        buffer.size - offset
      } bytes past offset ${offset} but the batch needs ${bytes}: pass a buffer of [numTokens, numQHeads, headDim] float32`,
    );
  }
}

/**
 * Records attention for the whole batch into `encoder`, reading Q from and
 * writing the output to `io`'s buffers; nothing is submitted or read back.
 */
export function encodePaged(
  encoder: GPUCommandEncoder,
  cache: FlashinferCache,
  plan: FlashinferPlan,
  io: DeviceAttendIo,
  prefillKeysPerPass: number = PREFILL_KEYS_PER_PASS,
): DeviceWork {
  checkPlan(cache, plan);
  const { config, device, scales: s } = cache;
  const outBytes = plan.numTokens * config.numQHeads * config.headDim * 4;
  const qAt = io.queryOffset ?? 0, outAt = io.outOffset ?? 0;
  checkBuffer(cache, "query", io.query, qAt, outBytes);
  checkBuffer(cache, "out", io.out, outAt, outBytes);
  if (plan.numTokens === 0) return { release() {} };
  const { numQHeads, numKvHeads } = config;
  const numChunks = plan.decodeChunks.length / 4;
  const numItems = plan.decodeItems.length / 3;
  const numTiles = plan.prefillTiles.length / 4;
  const passes = Math.ceil(plan.prefillEnd / prefillKeysPerPass);
  const bytes = scratchBytes(cache, plan, passes);
  const o = plan.offsets;
  // The fields decode_split.wgsl and prefill.wgsl share, in struct order.
  const head: ParamField[] = [
    ["u32", numQHeads],
    ["u32", numKvHeads],
    ["u32", config.headDim],
    ["u32", config.blockSize],
    ["u32", cache.numSlots],
    ["u32", config.kind === "sliding_window" ? config.slidingWindow! : 0],
  ];
  const tail: ParamField[] = [
    ["f32", s.kScale],
    ["f32", s.vScale],
    ["i32", s.kZeroPoint],
    ["i32", s.vZeroPoint],
    ["f32", config.scale],
    ["f32", config.softCap ?? 0],
  ];
  const paged: ParamField[] = [
    ["u32", o.kvIndptr],
    ["u32", o.kvIndices],
    ["u32", o.lastPageLen],
  ];

  const job = new Submission(device, encoder);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
  const out = { buffer: io.out, offset: outAt, size: outBytes };
  const query = { buffer: io.query, offset: qAt, size: outBytes };
  const kv = [cache.kPages, cache.vPages, cache.tokenScales, plan.meta];
  if (numChunks > 0) {
    const partAcc = job.scratch(bytes["split-KV partial outputs"], usage);
    const partMl = job.scratch(bytes["split-KV states"], usage);
    const split = job.uniform(packParams([
      ...head,
      ["u32", numChunks],
      ...paged,
      ["u32", o.chunks],
      ...tail,
    ]));
    job.dispatch(
      cache.pipelines.decodeSplit,
      [split, query, ...kv, partAcc, partMl],
      [numKvHeads * decodeShape(config).slices, numChunks],
    );
    const reduce = job.uniform(packParams([
      ["u32", numQHeads],
      ["u32", config.headDim],
      ["u32", numItems],
      ["u32", o.items],
    ]));
    job.dispatch(
      cache.pipelines.decodeReduce,
      [reduce, plan.meta, partAcc, partMl, out],
      [numQHeads, numItems],
    );
  }
  if (numTiles > 0) {
    const state = job.scratch(bytes["prefill state"], usage);
    // Passes run in order; each reads the state the previous one left.
    for (let p = 0; p < passes; p++) {
      const u = job.uniform(packParams([
        ...head,
        ["u32", numTiles],
        ...paged,
        ["u32", o.tiles],
        ...tail,
        ["u32", p * prefillKeysPerPass],
        ["u32", prefillKeysPerPass],
      ]));
      job.dispatch(
        cache.pipelines.prefill,
        [u, query, out, ...kv, state],
        [numQHeads, numTiles],
      );
    }
  }
  return { release: job.detach() };
}

/** Runs attention for the whole batch and fills `input.out`. */
export async function attendPaged(
  cache: FlashinferCache,
  plan: FlashinferPlan,
  input: AttendInput,
  prefillKeysPerPass: number = PREFILL_KEYS_PER_PASS,
): Promise<void> {
  checkPlan(cache, plan);
  const { config, device } = cache;
  const qRow = config.numQHeads * config.headDim;
  checkLength(cache, "query", input.query.length, plan.numTokens * qRow);
  checkLength(cache, "out", input.out.length, plan.numTokens * qRow);
  if (plan.numTokens === 0) return;
  const passes = Math.ceil(plan.prefillEnd / prefillKeysPerPass);
  const bytes = scratchBytes(cache, plan, passes).out;

  device.pushErrorScope("validation");
  const job = new Submission(device);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
  const out = job.scratch(bytes, usage);
  const query = job.storage(input.query);
  let work: DeviceWork;
  try {
    work = encodePaged(
      job.encoder,
      cache,
      plan,
      { query, out },
      prefillKeysPerPass,
    );
  } catch (e) {
    job.detach()(); // nothing was submitted: free the uploads now
    await device.popErrorScope();
    throw e;
  }
  const result = job.read(out, 0, bytes); // submits now, in call order
  work.release(); // destroyed once the submitted work completes
  const error = await device.popErrorScope();
  await cache.throwTrackedErrors().catch((e) => {
    result.catch(() => {});
    throw e;
  });
  if (error) {
    result.catch(() => {}); // the read fails too; the scope's error says why
    throw webGpuBackendError(
      cache,
      `WebGPU attention failed: ${error.message}`,
      error,
    );
  }
  input.out.set(new Float32Array(await result));
}
