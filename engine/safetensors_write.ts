/**
 * Writes the safetensors format, for tests and tools that make small
 * checkpoints (the reader is in safetensors.ts).
 *
 * @module
 */

import { encodeBf16Array } from "../core/bf16.ts";
import { encodeFp16Array } from "../core/fp16.ts";
import type { SafetensorsDtype } from "./safetensors.ts";

/** A tensor to write: float32 values, stored as `dtype` (rounded to nearest even). */
export interface TensorToWrite {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Row-major values. shape `shape`, float32 */
  readonly data: Float32Array;
}

/**
 * Encodes tensors as one safetensors file: names in sorted order, the header
 * padded with spaces to a multiple of 8 bytes (as the Python writer does, so
 * that every tensor starts aligned).
 *
 * @example Usage
 * ```ts
 * import { encodeSafetensors } from "./safetensors_write.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeSafetensors({
 *   x: { dtype: "BF16", shape: [1, 2], data: Float32Array.of(1, 2) },
 * });
 * const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
 * assert.equal(headerLen % 8, 0);
 * assert.equal(bytes.length, 8 + headerLen + 4);
 * ```
 */
export function encodeSafetensors(
  tensors: Readonly<Record<string, TensorToWrite>>,
  options: { metadata?: Readonly<Record<string, string>> } = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const name of Object.keys(tensors).sort()) {
    const { dtype, shape, data } = tensors[name];
    const numel = shape.reduce((a, d) => a * d, 1);
    if (numel !== data.length) {
      throw new RangeError(
        `Tensor "${name}" has ${data.length} values but shape [${shape}] needs ${numel}`,
      );
    }
    const blob = encode(data, dtype);
    header[name] = {
      dtype,
      shape,
      data_offsets: [offset, offset + blob.length],
    };
    blobs.push(blob);
    offset += blob.length;
  }
  if (options.metadata) header.__metadata__ = options.metadata;
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad by bytes, not characters: tensor names may be non-ASCII.
  const head = new Uint8Array(json.length + (8 - json.length % 8) % 8)
    .fill(0x20);
  head.set(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const blob of blobs) {
    out.set(blob, at);
    at += blob.length;
  }
  return out;
}

function encode(data: Float32Array, dtype: SafetensorsDtype): Uint8Array {
  const copy = Float32Array.from(data);
  if (dtype === "F32") return new Uint8Array(copy.buffer);
  const words = dtype === "F16" ? encodeFp16Array(copy) : encodeBf16Array(copy);
  return new Uint8Array(words.buffer);
}
