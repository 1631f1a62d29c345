/**
 * The checks encodeAttend() runs before recording anything, so that a bad
 * call is an error naming the fix, never a GPU validation error or a wrong
 * answer.
 *
 * @module
 */

import {
  type DeviceAttendIo,
  webGpuShapeError,
} from "../../webgpu/device_attention.ts";
import type { Fa3Cache } from "./webgpu_cache.ts";
import type { Fa3Plan } from "./webgpu_plan.ts";

/**
 * Throws on anything the GPU must never see: block size and ids, buffer
 * usage, offsets and sizes, scratch past one binding, grids past one
 * dispatch. Returns the bytes of Q (and of the output).
 */
export function checkEncode(
  cache: Fa3Cache,
  plan: Fa3Plan,
  io: DeviceAttendIo,
): number {
  const { config, device } = cache;
  if (plan.blockSize !== config.blockSize) {
    throw webGpuShapeError(
      cache,
      `The plan was made for block size ${plan.blockSize} but layer ${config.index}'s cache uses ${config.blockSize}: plan the batch with blockSize ${config.blockSize}`,
    );
  }
  if (plan.maxBlockId >= cache.numBlocks) {
    throw webGpuShapeError(
      cache,
      `The plan uses block ${plan.maxBlockId}, outside layer ${config.index}'s ${cache.numBlocks} blocks (0..${
        cache.numBlocks - 1
      })`,
    );
  }
  const bytes = plan.numTokens * config.numQHeads * config.headDim * 4;
  const align = device.limits.minStorageBufferOffsetAlignment;
  for (
    const [name, buffer, offset] of [
      ["query", io.query, io.queryOffset ?? 0],
      ["out", io.out, io.outOffset ?? 0],
    ] as const
  ) {
    if ((buffer.usage & GPUBufferUsage.STORAGE) === 0) {
      throw webGpuShapeError(
        cache,
        `io.${name} was created without GPUBufferUsage.STORAGE: add it to the buffer's usage`,
      );
    }
    if (offset % align !== 0) {
      throw webGpuShapeError(
        cache,
        `io.${name}Offset is ${offset}, not a multiple of this device's minStorageBufferOffsetAlignment ${align}`,
      );
    }
    if (buffer.size < offset + bytes) {
      throw webGpuShapeError(
        cache,
        `io.${name} holds ${buffer.size} bytes but the batch needs ${bytes} from offset ${offset}: [numTokens ${plan.numTokens}, numQHeads ${config.numQHeads}, headDim ${config.headDim}] float32`,
      );
    }
  }
  const rows = plan.numTokens * config.numQHeads;
  const scratch = {
    "quantized Q": rows * (config.headDim / 4 + 2) * 4,
    "softmax state": plan.passes > 1 ? rows * (1 + config.headDim / 4) * 16 : 0,
  };
  const max = device.limits.maxStorageBufferBindingSize;
  for (const [what, n] of Object.entries(scratch)) {
    if (n > max) {
      throw webGpuShapeError(
        cache,
        `The batch's ${what} takes ${n} bytes but this WebGPU device binds at most ${max} bytes per buffer: split the batch`,
      );
    }
  }
  const maxDim = device.limits.maxComputeWorkgroupsPerDimension;
  if (plan.numTokens > maxDim) {
    throw webGpuShapeError(
      cache,
      `The batch has ${plan.numTokens} query tokens but one WebGPU dispatch holds at most ${maxDim}: split the batch`,
    );
  }
  return bytes;
}
