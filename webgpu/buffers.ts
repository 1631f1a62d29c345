/**
 * Buffer helpers that every WebGPU kernel host needs: upload typed data into
 * a fresh buffer, and read a range back (the one place that maps memory).
 *
 * @module
 */

/**
 * A buffer holding a copy of `data`. Sizes are rounded up to 4 bytes and to
 * at least 16, because WebGPU refuses zero-size bindings and unaligned copies.
 *
 * @param usage Extra usages; COPY_DST is always added.
 *
 * @example Usage
 * ```ts
 * import { createBufferFrom, probeWebGpu, readBuffer } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await probeWebGpu();
 * if (probe.available) {
 *   const buf = createBufferFrom(probe.device, Int32Array.of(1, -2, 3), GPUBufferUsage.COPY_SRC);
 *   const back = new Int32Array(await readBuffer(probe.device, buf, 0, 12));
 *   assert.deepEqual([...back], [1, -2, 3]);
 *   buf.destroy();
 * }
 * ```
 */
export function createBufferFrom(
  device: GPUDevice,
  data: ArrayBufferView,
  usage: GPUBufferUsageFlags,
  label?: string,
): GPUBuffer {
  const size = Math.max(16, Math.ceil(data.byteLength / 4) * 4);
  const buffer = device.createBuffer({
    size,
    usage: usage | GPUBufferUsage.COPY_DST,
    label,
  });
  const whole = data.byteLength - (data.byteLength % 4);
  if (whole > 0) {
    device.queue.writeBuffer(
      buffer,
      0,
      data.buffer as ArrayBuffer,
      data.byteOffset,
      whole,
    );
  }
  if (whole < data.byteLength) {
    // writeBuffer needs 4-byte sizes: pad the tail with zeros.
    const tail = new Uint8Array(4);
    tail.set(
      new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset + whole),
    );
    device.queue.writeBuffer(buffer, whole, tail);
  }
  return buffer;
}

/**
 * Copies `size` bytes of `buffer` from `offset` into a staging buffer, waits
 * for the GPU and returns them. `buffer` needs COPY_SRC usage; offset and
 * size must be multiples of 4.
 *
 * @param encoder Work to submit before the copy (it is finished here).
 */
export async function readBuffer(
  device: GPUDevice,
  buffer: GPUBuffer,
  offset: number,
  size: number,
  encoder: GPUCommandEncoder = device.createCommandEncoder(),
): Promise<ArrayBuffer> {
  const staging = device.createBuffer({
    size: Math.max(16, size),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    if (size > 0) {
      encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
    }
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ, 0, Math.max(16, size));
    return staging.getMappedRange(0, size).slice(0);
  } finally {
    staging.destroy();
  }
}
