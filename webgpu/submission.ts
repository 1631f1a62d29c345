/**
 * Recording one command encoder's worth of compute work: uniform `Params`
 * packing, transient buffers freed after submission, and one read-back at
 * the end. Shared by the WebGPU targets (a backend never imports another).
 *
 * @module
 */

import { createBufferFrom, readBuffer } from "./buffers.ts";

/** One field of a WGSL `Params` struct, in declaration order. */
export type ParamField = readonly ["u32" | "i32" | "f32", number];

/**
 * Packs scalar fields as a WGSL struct of 4-byte members, padded to 16 bytes
 * (uniform buffer sizes); f32 fields are rounded to fp32 here, once.
 *
 * @example Usage
 * ```ts
 * import { packParams } from "./submission.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = packParams([["u32", 7], ["f32", 0.5]]);
 * assert.equal(bytes.length, 16);
 * assert.equal(new DataView(bytes.buffer).getFloat32(4, true), 0.5);
 * ```
 */
export function packParams(fields: readonly ParamField[]): Uint8Array {
  const bytes = new Uint8Array(Math.max(1, Math.ceil(fields.length / 4)) * 16);
  const view = new DataView(bytes.buffer);
  fields.forEach(([type, value], i) => {
    if (type === "f32") view.setFloat32(4 * i, value, true);
    else if (type === "i32") view.setInt32(4 * i, value, true);
    else view.setUint32(4 * i, value, true);
  });
  return bytes;
}

/** The fp32 bit pattern of a number (exact kernels take scales as bits). */
export function fp32Bits(x: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, x, true);
  return view.getUint32(0, true);
}

/**
 * A grid of `[x, y]` workgroups covering `items` when one dimension holds at
 * most `maxPerDim`; kernels compute `wid.x + wid.y * num_workgroups.x`.
 */
export function grid2d(items: number, maxPerDim: number): [number, number] {
  const x = Math.max(1, Math.min(items, maxPerDim));
  return [x, Math.ceil(items / x)];
}

/** One command encoder's worth of work and the transient buffers it reads. */
export class Submission {
  readonly device: GPUDevice;
  readonly encoder: GPUCommandEncoder;
  readonly #transient: GPUBuffer[] = [];

  /**
   * @param encoder Where the work is recorded: the caller's encoder when the
   * work joins a larger submission (see device_attention.ts).
   * @default a new encoder
   */
  constructor(
    device: GPUDevice,
    encoder: GPUCommandEncoder = device.createCommandEncoder(),
  ) {
    this.device = device;
    this.encoder = encoder;
  }

  /** A uniform buffer holding `data`, freed after submission. */
  uniform(data: ArrayBufferView): GPUBuffer {
    return this.#keep(
      createBufferFrom(this.device, data, GPUBufferUsage.UNIFORM),
    );
  }

  /** A storage buffer holding `data` (COPY_SRC too), freed after submission. */
  storage(data: ArrayBufferView): GPUBuffer {
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
    return this.#keep(createBufferFrom(this.device, data, usage));
  }

  /** A zeroed scratch buffer, freed after submission. */
  scratch(size: number, usage: GPUBufferUsageFlags): GPUBuffer {
    return this.#keep(
      this.device.createBuffer({ size: Math.max(16, size), usage }),
    );
  }

  /**
   * Records a compute pass: `bindings[i]` goes to @binding(i) of group 0,
   * a whole buffer or a range of one.
   */
  dispatch(
    pipeline: GPUComputePipeline,
    bindings: readonly (GPUBuffer | GPUBufferBinding)[],
    groups: readonly [number, number],
  ): void {
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: bindings.map((b, binding) => ({
        binding,
        resource: b instanceof GPUBuffer ? { buffer: b } : b,
      })),
    });
    const pass = this.encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(groups[0], groups[1]);
    pass.end();
  }

  /** Submits without waiting (later submissions see the results). */
  submit(): void {
    this.device.queue.submit([this.encoder.finish()]);
    this.#release();
  }

  /** Submits, then waits for and returns `size` bytes of `buffer` at `offset`. */
  async read(
    buffer: GPUBuffer,
    offset: number,
    size: number,
  ): Promise<ArrayBuffer> {
    try {
      return await readBuffer(this.device, buffer, offset, size, this.encoder);
    } finally {
      this.#release();
    }
  }

  /**
   * For work recorded into the caller's encoder: hands over the transient
   * buffers, returning what frees them once the caller's submission has
   * completed.
   */
  detach(): () => void {
    const buffers = this.#transient.splice(0);
    return () => buffers.forEach((b) => b.destroy());
  }

  #keep(buffer: GPUBuffer): GPUBuffer {
    this.#transient.push(buffer);
    return buffer;
  }

  // WebGPU lets a buffer be destroyed once the work using it is submitted:
  // the implementation frees it when that work completes.
  #release(): void {
    for (const b of this.#transient) b.destroy();
    this.#transient.length = 0;
  }
}
