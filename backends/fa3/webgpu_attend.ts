/**
 * fa3 attention recorded into a command encoder (DeviceResidentAttention's
 * encodeAttend) and, on top of it, the contract's attend(): the same
 * recording plus one read-back. Per batch and layer:
 *
 * 1. quantize_q.wgsl: Q to 8-bit codes and a scale per (token, query head);
 * 2. attend.wgsl, split-KV where it can ({@linkcode splitPasses}): one
 *    dispatch of every pass of SPLIT_KEYS keys in parallel, then
 *    merge.wgsl merging each row's passes; otherwise one dispatch per
 *    KEYS_PER_PASS keys, carrying each row's softmax state between passes,
 *    the last pass writing the output.
 *
 * @module
 */

import type { AttendInput } from "../../core/backend.ts";
import {
  createBufferFrom,
  type DeviceAttendIo,
  type DeviceWork,
  grid2d,
  packParams,
  readBuffer,
  webGpuBackendError,
} from "../../webgpu/mod.ts";
import type { Fa3Cache } from "./webgpu_cache.ts";
import { checkEncode } from "./webgpu_attend_checks.ts";
import { checkLength } from "../../webgpu/hnd_cache_ops.ts";
import {
  KEYS_PER_PASS,
  SPLIT_KEYS,
  SPLIT_STATE_BYTES,
} from "./webgpu_kernels.ts";
import type { Fa3Plan } from "./webgpu_plan.ts";

type Binding = GPUBuffer | GPUBufferBinding;

function dispatch(
  encoder: GPUCommandEncoder,
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  bindings: readonly Binding[],
  groups: readonly [number, number] | readonly [number, number, number],
): void {
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: bindings.map((b, binding) => ({
      binding,
      resource: b instanceof GPUBuffer ? { buffer: b } : b,
    })),
  });
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(groups[0], groups[1], groups[2] ?? 1);
  pass.end();
}

/**
 * Split-KV's pass length and count for a batch, or undefined where it
 * carries instead: with the setting splitKv off, without promotion (the
 * 16-bit accumulator then spans
 * the whole sequence, so passes must run in order), with one pass, or
 * when the per-pass states would pass SPLIT_STATE_BYTES or the binding
 * limit. The length is SPLIT_KEYS rounded up to whole promotion groups
 * (block_size * promoteEveryBlocks keys), at most KEYS_PER_PASS.
 */
export function splitPasses(
  cache: Fa3Cache,
  plan: Fa3Plan,
): { readonly span: number; readonly passes: number } | undefined {
  const { promote, promoteEveryBlocks, splitKv } = cache.pipelines;
  const group = cache.config.blockSize * promoteEveryBlocks;
  const span = Math.ceil(SPLIT_KEYS / group) * group;
  const passes = Math.ceil(plan.maxSeqLen / span);
  const rows = plan.numTokens * cache.config.numQHeads;
  const bytes = passes * rows * (1 + cache.config.headDim / 4) * 16;
  const { limits } = cache.device;
  const fits =
    bytes <= Math.min(SPLIT_STATE_BYTES, limits.maxStorageBufferBindingSize) &&
    passes <= limits.maxComputeWorkgroupsPerDimension;
  return splitKv && promote && span <= KEYS_PER_PASS && passes > 1 && fits
    ? { span, passes }
    : undefined;
}

/** Records attention for the planned batch; see DeviceResidentAttention. */
export function encodeFa3Attend(
  encoder: GPUCommandEncoder,
  cache: Fa3Cache,
  plan: Fa3Plan,
  io: DeviceAttendIo,
): DeviceWork {
  const bytes = checkEncode(cache, plan, io);
  const transient: GPUBuffer[] = [];
  const work = { release: () => transient.forEach((b) => b.destroy()) };
  if (plan.numTokens === 0) return work;
  const { config, device, scales: s } = cache;
  const { numQHeads, numKvHeads, headDim } = config;
  const rows = plan.numTokens * numQHeads;
  const words = headDim / 4;
  const keep = (b: GPUBuffer) => (transient.push(b), b);
  const uniform = (fields: Parameters<typeof packParams>[0]) =>
    keep(createBufferFrom(device, packParams(fields), GPUBufferUsage.UNIFORM));
  const storage = (size: number) =>
    keep(device.createBuffer({
      size: Math.max(16, size),
      usage: GPUBufferUsage.STORAGE,
    }));
  const qCodes = storage((rows * words + 2 * rows) * 4);
  const split = splitPasses(cache, plan);
  const slots = split?.passes ?? (plan.passes > 1 ? 1 : 0);
  const state = storage(slots * rows * (1 + words) * 16);
  const query = { buffer: io.query, offset: io.queryOffset ?? 0, size: bytes };
  const out = { buffer: io.out, offset: io.outOffset ?? 0, size: bytes };
  dispatch(
    encoder,
    device,
    cache.pipelines.quantizeQ,
    [uniform([["u32", rows], ["u32", headDim]]), query, qCodes],
    grid2d(rows, device.limits.maxComputeWorkgroupsPerDimension),
  );
  // per_token_head int8 is symmetric: its zero point is 0 (core/int8.ts).
  const zp = (z: number) => cache.perTokenHead ? 0 : z;
  const o = plan.offsets;
  const window = config.kind === "sliding_window" ? config.slidingWindow! : 0;
  const attendParams = (begin: number, end: number) =>
    uniform([
      ["u32", numQHeads],
      ["u32", numKvHeads],
      ["u32", headDim],
      ["u32", config.blockSize],
      ["u32", cache.numSlots],
      ["u32", window],
      ["u32", plan.numTokens],
      ["u32", plan.maxBlocksPerSeq],
      ["u32", o.tokenSeq],
      ["u32", o.tokenPos],
      ["u32", o.tables],
      ["u32", begin],
      ["u32", end],
      ["f32", s.kScale],
      ["f32", s.vScale],
      ["i32", zp(s.kZeroPoint)],
      ["i32", zp(s.vZeroPoint)],
      ["f32", config.scale],
      ["f32", config.softCap ?? 0],
      ["u32", split ? 1 : 0],
    ]);
  const attendBindings = (params: GPUBuffer) => [
    params,
    qCodes,
    cache.kPages,
    cache.vPages,
    cache.tokenScales,
    plan.meta,
    state,
    out,
  ];
  if (split) {
    dispatch(
      encoder,
      device,
      cache.pipelines.attend,
      attendBindings(attendParams(0, split.span)),
      [numQHeads, plan.numTokens, split.passes],
    );
    const params = uniform([
      ["u32", numQHeads],
      ["u32", headDim],
      ["u32", plan.numTokens],
      ["u32", split.span],
      ["u32", window],
      ["u32", o.tokenPos],
      ["f32", cache.perTokenHead ? 1 : s.vScale],
    ]);
    dispatch(encoder, device, cache.pipelines.merge, [
      params,
      plan.meta,
      state,
      out,
    ], [numQHeads, plan.numTokens]);
    return work;
  }
  for (let p = 0; p < plan.passes; p++) {
    dispatch(
      encoder,
      device,
      cache.pipelines.attend,
      attendBindings(attendParams(p * KEYS_PER_PASS, (p + 1) * KEYS_PER_PASS)),
      [numQHeads, plan.numTokens],
    );
  }
  return work;
}

/** The contract's attend(): the recorded path, then one read-back. */
export async function attendFa3(
  cache: Fa3Cache,
  plan: Fa3Plan,
  input: AttendInput,
): Promise<void> {
  const { config, device } = cache;
  const qRow = config.numQHeads * config.headDim;
  checkLength(cache, "query", input.query.length, plan.numTokens * qRow);
  checkLength(cache, "out", input.out.length, plan.numTokens * qRow);
  if (plan.numTokens === 0) return;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
  device.pushErrorScope("validation");
  const query = createBufferFrom(device, input.query, usage);
  const out = device.createBuffer({ size: input.out.byteLength, usage });
  const encoder = device.createCommandEncoder();
  let work: DeviceWork;
  try {
    work = encodeFa3Attend(encoder, cache, plan, { query, out });
  } catch (e) {
    await device.popErrorScope();
    query.destroy();
    out.destroy();
    throw e;
  }
  // Submits now, in call order; destroying the buffers after submission
  // is allowed (they are freed when the work completes).
  const result = readBuffer(device, out, 0, input.out.byteLength, encoder);
  work.release();
  query.destroy();
  out.destroy();
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
