/**
 * fa3 attention recorded into a command encoder (DeviceResidentAttention's
 * encodeAttend) and, on top of it, the contract's attend(): the same
 * recording plus one read-back. Per batch and layer:
 *
 * 1. quantize_q.wgsl: Q to 8-bit codes and a scale per (token, query head);
 * 2. attend.wgsl: one dispatch per KEYS_PER_PASS keys, carrying each row's
 *    softmax state between passes, the last pass writing the output.
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
} from "../../webgpu/mod.ts";
import type { Fa3Cache } from "./webgpu_cache.ts";
import { checkEncode } from "./webgpu_attend_checks.ts";
import { checkLength } from "./webgpu_cache_ops.ts";
import { KEYS_PER_PASS } from "./webgpu_kernels.ts";
import type { Fa3Plan } from "./webgpu_plan.ts";

type Binding = GPUBuffer | GPUBufferBinding;

function dispatch(
  encoder: GPUCommandEncoder,
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  bindings: readonly Binding[],
  groups: readonly [number, number],
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
  pass.dispatchWorkgroups(groups[0], groups[1]);
  pass.end();
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
  const state = storage(plan.passes > 1 ? rows * (1 + words) * 16 : 16);
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
  for (let p = 0; p < plan.passes; p++) {
    const params = uniform([
      ["u32", numQHeads],
      ["u32", numKvHeads],
      ["u32", headDim],
      ["u32", config.blockSize],
      ["u32", cache.numSlots],
      ["u32", config.kind === "sliding_window" ? config.slidingWindow! : 0],
      ["u32", plan.numTokens],
      ["u32", plan.maxBlocksPerSeq],
      ["u32", o.tokenSeq],
      ["u32", o.tokenPos],
      ["u32", o.tables],
      ["u32", p * KEYS_PER_PASS],
      ["u32", (p + 1) * KEYS_PER_PASS],
      ["f32", s.kScale],
      ["f32", s.vScale],
      ["i32", zp(s.kZeroPoint)],
      ["i32", zp(s.vZeroPoint)],
      ["f32", config.scale],
      ["f32", config.softCap ?? 0],
    ]);
    dispatch(encoder, device, cache.pipelines.attend, [
      params,
      qCodes,
      cache.kPages,
      cache.vPages,
      cache.tokenScales,
      plan.meta,
      state,
      out,
    ], [numQHeads, plan.numTokens]);
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
  checkLength("query", input.query.length, plan.numTokens * qRow);
  checkLength("out", input.out.length, plan.numTokens * qRow);
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
    throw new Error(`WebGPU attention failed: ${error.message}`);
  }
  input.out.set(new Float32Array(await result));
}
