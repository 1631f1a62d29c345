/**
 * Paged attention on the GPU for one planned batch: decode sequences (one
 * query token) go to decode.wgsl, one workgroup per (token, query head);
 * prefill sequences go to prefill.wgsl in tiles of 8 query tokens. Contexts
 * longer than one pass (KEYS_PER_PASS) take several dispatches that carry
 * the softmax state. Everything is recorded into one command encoder; the
 * kernels write disjoint rows of one output buffer, the only thing read back.
 * {@linkcode encodeAttention} records the same work into a caller's encoder
 * with Q and the output on the device (DeviceResidentAttention);
 * {@linkcode attendCache} uploads Q, records through it and reads back once.
 *
 * @module
 */

import type { AttendInput } from "../../core/backend.ts";
import type { PlannedBatch } from "../../core/batch.ts";
import {
  type DeviceAttendIo,
  type DeviceWork,
  webGpuBackendError,
  webGpuShapeError,
} from "../../webgpu/mod.ts";
import { type BatchMeta, packBatchMeta } from "./webgpu_batch_meta.ts";
import type { WebGpuCache } from "./webgpu_cache.ts";
import { checkLength } from "./webgpu_cache_ops.ts";
import { packParams, Submission } from "../../webgpu/submission.ts";
import {
  DECODE_KEYS_PER_PASS,
  PREFILL_KEYS_PER_PASS,
} from "./webgpu_kernels.ts";

/** Keys per dispatch of each kernel (see DECODE_KEYS_PER_PASS). */
export interface KeysPerPass {
  readonly decode: number;
  readonly prefill: number;
}

const DEFAULT_KEYS_PER_PASS: KeysPerPass = {
  decode: DECODE_KEYS_PER_PASS,
  prefill: PREFILL_KEYS_PER_PASS,
};

/** Throws on anything the GPU must never see: block size, block ids. */
function checkPlan(cache: WebGpuCache, plan: PlannedBatch): void {
  const { config } = cache;
  if (plan.blockSize !== config.blockSize) {
    throw webGpuShapeError(
      cache,
      `The batch was planned for block size ${plan.blockSize} but layer ${config.index}'s cache uses ${config.blockSize}`,
    );
  }
  for (let s = 0; s < plan.numSeqs; s++) {
    const needed = Math.ceil(plan.seqLens[s] / plan.blockSize);
    for (let b = 0; b < needed; b++) {
      const block = plan.blockTables[s * plan.maxBlocksPerSeq + b];
      if (block >= cache.numBlocks) {
        throw webGpuShapeError(
          cache,
          `blockTables[${s}][${b}] is ${block}, outside the cache's ${cache.numBlocks} blocks (0..${
            cache.numBlocks - 1
          })`,
        );
      }
    }
  }
}

/** Throws when a buffer or a grid dimension would exceed the device. */
function checkFits(
  cache: WebGpuCache,
  bytes: Record<string, number>,
  rows: Record<string, number>,
): void {
  const maxBinding = cache.device.limits.maxStorageBufferBindingSize;
  const maxDim = cache.device.limits.maxComputeWorkgroupsPerDimension;
  for (const [what, n] of Object.entries(bytes)) {
    if (n > maxBinding) {
      throw webGpuShapeError(
        cache,
        `The batch's ${what} takes ${n} bytes but this WebGPU device binds at most ${maxBinding} bytes per buffer: split the batch`,
      );
    }
  }
  for (const [what, n] of Object.entries(rows)) {
    if (n > maxDim) {
      throw webGpuShapeError(
        cache,
        `The batch has ${n} ${what} but one WebGPU dispatch holds at most ${maxDim}: split the batch`,
      );
    }
  }
}

/** Throws when a device buffer, past its offset, is smaller than `bytes`. */
function checkBuffer(
  cache: WebGpuCache,
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
export function encodeAttention(
  encoder: GPUCommandEncoder,
  cache: WebGpuCache,
  plan: PlannedBatch,
  io: DeviceAttendIo,
  keysPerPass: KeysPerPass = DEFAULT_KEYS_PER_PASS,
): DeviceWork {
  checkPlan(cache, plan);
  const { config, device } = cache;
  const bytes = plan.numTokens * config.numQHeads * config.headDim * 4;
  const qAt = io.queryOffset ?? 0, outAt = io.outOffset ?? 0;
  checkBuffer(cache, "query", io.query, qAt, bytes);
  checkBuffer(cache, "out", io.out, outAt, bytes);
  if (plan.numTokens === 0) return { release() {} };
  const meta = packBatchMeta(plan);
  const decodePasses = Math.ceil(meta.decodeEnd / keysPerPass.decode);
  const prefillPasses = Math.ceil(meta.prefillEnd / keysPerPass.prefill);
  // Per (token, head): (m, l, -, -) and head_dim / 4 acc vec4s.
  const stateBytes = Math.max(decodePasses, prefillPasses) > 1
    ? plan.numTokens * config.numQHeads * (1 + config.headDim / 4) * 16
    : 16;
  checkFits(cache, { query: bytes, "softmax state": stateBytes }, {
    "decode tokens": meta.numDecodes,
    "prefill tiles": meta.numTiles,
  });

  const job = new Submission(device, encoder);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
  const buffers = [
    { buffer: io.query, offset: qAt, size: bytes },
    { buffer: io.out, offset: outAt, size: bytes },
    cache.kCodes,
    cache.vCodes,
    cache.tokenScales,
    job.storage(meta.data),
    job.scratch(stateBytes, usage),
  ];
  const heads = config.numQHeads;
  // Passes run in order; each reads the state the previous one left.
  for (let p = 0; p < decodePasses; p++) {
    const u = job.uniform(params(cache, plan, meta, "decode", p, keysPerPass));
    job.dispatch(cache.pipelines.decode, [u, ...buffers], [
      heads,
      meta.numDecodes,
    ]);
  }
  for (let p = 0; p < prefillPasses; p++) {
    const u = job.uniform(params(cache, plan, meta, "prefill", p, keysPerPass));
    job.dispatch(cache.pipelines.prefill, [u, ...buffers], [
      heads,
      meta.numTiles,
    ]);
  }
  return { release: job.detach() };
}

/** Runs attention for the whole batch and fills `input.out`. */
export async function attendCache(
  cache: WebGpuCache,
  plan: PlannedBatch,
  input: AttendInput,
  keysPerPass: KeysPerPass = DEFAULT_KEYS_PER_PASS,
): Promise<void> {
  checkPlan(cache, plan);
  const { config, device } = cache;
  const qRow = config.numQHeads * config.headDim;
  checkLength(cache, "query", input.query.length, plan.numTokens * qRow);
  checkLength(cache, "out", input.out.length, plan.numTokens * qRow);
  if (plan.numTokens === 0) return;
  const bytes = input.out.byteLength;
  checkFits(cache, { query: bytes }, {});

  device.pushErrorScope("validation");
  const job = new Submission(device);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
  const out = job.scratch(bytes, usage);
  const query = job.storage(input.query);
  let work: DeviceWork;
  try {
    work = encodeAttention(
      job.encoder,
      cache,
      plan,
      { query, out },
      keysPerPass,
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

/** The `Params` struct of decode.wgsl and prefill.wgsl (the same layout). */
function params(
  cache: WebGpuCache,
  plan: PlannedBatch,
  meta: BatchMeta,
  kernel: "decode" | "prefill",
  pass: number,
  keysPerPass: KeysPerPass,
): Uint8Array {
  const { config, scales: s } = cache;
  const per = keysPerPass[kernel];
  const decode = kernel === "decode";
  return packParams([
    ["u32", config.numQHeads],
    ["u32", config.numKvHeads],
    ["u32", config.headDim],
    ["u32", config.blockSize],
    ["u32", plan.maxBlocksPerSeq],
    ["u32", cache.numSlots],
    ["u32", config.kind === "sliding_window" ? config.slidingWindow! : 0],
    ["u32", decode ? meta.numDecodes : meta.numTiles],
    ["u32", meta.offsets[0]],
    ["u32", meta.offsets[1]],
    ["u32", meta.offsets[2]],
    ["u32", meta.offsets[3]],
    ["u32", decode ? meta.decodeAt : meta.tilesAt],
    ["f32", s.kScale],
    ["f32", s.vScale],
    ["i32", s.kZeroPoint],
    ["i32", s.vZeroPoint],
    ["f32", config.scale],
    ["u32", pass * per],
    ["u32", per],
  ]);
}
