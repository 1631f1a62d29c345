/**
 * A decoder's weights uploaded once to a WebGPU device, float32, in the
 * layout engine/weights.ts holds them (matrices [out, in] row-major, as the
 * matmul kernel reads them). A tied output projection shares the
 * embedding's buffer.
 *
 * @module
 */

import { createBufferFrom } from "../../webgpu/mod.ts";
import type { LayerWeights, ModelWeights } from "../weights.ts";

/** One layer's weights on the device; optional ones as in LayerWeights. */
export type DeviceLayerWeights = {
  readonly [K in keyof LayerWeights]-?: undefined extends LayerWeights[K]
    ? GPUBuffer | undefined
    : GPUBuffer;
};

/** A whole decoder's weights on the device. */
export interface DeviceWeights {
  readonly embed: GPUBuffer;
  readonly layers: readonly DeviceLayerWeights[];
  readonly finalNorm: GPUBuffer;
  readonly lmHead: GPUBuffer;
  /** Bytes uploaded (a tied lm_head counted once). */
  readonly bytes: number;
  /** Frees every buffer. */
  destroy(): void;
}

/**
 * Uploads every weight once.
 *
 * @throws {RangeError} Naming the tensor when one exceeds the device's
 * largest storage binding.
 */
export function uploadWeights(
  device: GPUDevice,
  weights: ModelWeights,
): DeviceWeights {
  const buffers: GPUBuffer[] = [];
  const max = device.limits.maxStorageBufferBindingSize;
  let bytes = 0;
  const up = (data: Float32Array, name: string): GPUBuffer => {
    if (data.byteLength > max) {
      throw new RangeError(
        `Weight ${name} takes ${data.byteLength} bytes but this WebGPU device binds at most ${max} bytes per buffer: use the host Transformer for this model`,
      );
    }
    const buffer = createBufferFrom(
      device,
      data,
      GPUBufferUsage.STORAGE,
      name,
    );
    buffers.push(buffer);
    bytes += data.byteLength;
    return buffer;
  };
  const layers = weights.layers.map((l, i) => {
    const entries = Object.entries(l).map(([key, value]) => {
      if (value === undefined) return [key, undefined];
      const data = value instanceof Float32Array ? value : value.data;
      return [key, up(data, `layers.${i}.${key}`)];
    });
    return Object.fromEntries(entries) as DeviceLayerWeights;
  });
  const embed = up(weights.embed.data, "embed_tokens");
  const lmHead = weights.lmHead === weights.embed
    ? embed
    : up(weights.lmHead.data, "lm_head");
  return {
    embed,
    layers,
    finalNorm: up(weights.finalNorm, "norm"),
    lmHead,
    bytes,
    destroy() {
      for (const b of buffers) b.destroy();
    },
  };
}
