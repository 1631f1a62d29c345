/**
 * Reads the safetensors format (an 8-byte little-endian header length, a
 * JSON header, then the raw data) into float32 tensors, converting F16 and
 * BF16 with the core codecs. Every error names the file and the tensor.
 *
 * @module
 */

import { decodeBf16Array } from "../core/bf16.ts";
import { decodeFp16Array } from "../core/fp16.ts";

/** Stored dtypes this reader converts to float32. */
export const SAFETENSORS_DTYPES = ["F32", "F16", "BF16"] as const;

/** A stored dtype this reader converts. */
export type SafetensorsDtype = typeof SAFETENSORS_DTYPES[number];

/** One tensor, converted to float32 whatever its stored dtype. */
export interface Tensor {
  /** The dtype it was stored in. */
  readonly dtype: SafetensorsDtype;
  /** Dimensions, outermost first ([] for a scalar). */
  readonly shape: readonly number[];
  /** Row-major values. shape `shape`, float32 */
  readonly data: Float32Array;
}

/** A safetensors file that is truncated, malformed or holds an unsupported dtype. */
export class SafetensorsError extends Error {
  /** Creates the error; pass `{ cause }` to keep the underlying error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SafetensorsError";
  }
}

/** Options for {@linkcode parseSafetensors}. */
export interface ParseSafetensorsOptions {
  /**
   * The file's name, for error messages.
   * @default "<bytes>"
   */
  readonly file?: string;
  /**
   * Which tensors to convert; the others are skipped unchecked (so an
   * unused int64 buffer does not stop a load). Default: all.
   */
  readonly only?: (name: string) => boolean;
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/**
 * Parses a whole safetensors file held in memory.
 *
 * @example Usage
 * ```ts
 * import { parseSafetensors } from "./safetensors.ts";
 * import { encodeSafetensors } from "./safetensors_write.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeSafetensors({
 *   w: { dtype: "F16", shape: [2], data: Float32Array.of(1, -0.5) },
 * });
 * const w = parseSafetensors(bytes).get("w")!;
 * assert.deepEqual([w.dtype, w.shape, [...w.data]], ["F16", [2], [1, -0.5]]);
 * ```
 */
export function parseSafetensors(
  bytes: Uint8Array,
  options: ParseSafetensorsOptions = {},
): Map<string, Tensor> {
  const file = options.file ?? "<bytes>";
  const fail = (detail: string) => new SafetensorsError(`${file}: ${detail}`);
  if (bytes.length < 8) {
    throw fail(
      `File is truncated: ${bytes.length} bytes, less than the 8-byte header length`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const headerLen = Number(view.getBigUint64(0, true));
  if (8 + headerLen > bytes.length) {
    throw fail(
      `File is truncated: the header says ${headerLen} header bytes but only ${
        bytes.length - 8
      } follow`,
    );
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(
      new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)),
    );
  } catch (cause) {
    throw new SafetensorsError(
      `${file}: Header is not valid JSON: ${(cause as Error).message}`,
      { cause },
    );
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw fail("Header must be a JSON object of tensor entries");
  }
  const dataStart = 8 + headerLen;
  const tensors = new Map<string, Tensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    if (options.only && !options.only(name)) continue;
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as Record<
      string,
      unknown
    >;
    if (!(SAFETENSORS_DTYPES as readonly unknown[]).includes(dtype)) {
      throw fail(
        `Tensor "${name}" has dtype ${
          JSON.stringify(dtype)
        }: supported dtypes are ${SAFETENSORS_DTYPES.join(", ")}`,
      );
    }
    if (
      !Array.isArray(shape) ||
      !shape.every((d) => Number.isInteger(d) && d >= 0)
    ) {
      throw fail(
        `Tensor "${name}" has shape ${
          JSON.stringify(shape)
        }: expected a list of non-negative integers`,
      );
    }
    const [begin, end] = Array.isArray(offsets) ? offsets : [];
    const numel = shape.reduce((a: number, d: number) => a * d, 1);
    const want = numel * BYTES[dtype as SafetensorsDtype];
    if (
      !Number.isInteger(begin) || !Number.isInteger(end) || begin < 0 ||
      end - begin !== want
    ) {
      throw fail(
        `Tensor "${name}" has data_offsets ${
          JSON.stringify(offsets)
        }: shape [${shape}] in ${dtype} needs ${want} bytes`,
      );
    }
    if (dataStart + end > bytes.length) {
      throw fail(
        `File is truncated: tensor "${name}" ends at byte ${
          dataStart + end
        } but the file has ${bytes.length}`,
      );
    }
    tensors.set(name, {
      dtype: dtype as SafetensorsDtype,
      shape: shape as number[],
      data: convert(
        bytes,
        dataStart + begin,
        dataStart + end,
        dtype as SafetensorsDtype,
      ),
    });
  }
  return tensors;
}

// Slicing copies into a fresh, aligned buffer: offsets in the file need not be
// multiples of 4. The typed views assume a little-endian host (x86, ARM).
function convert(
  bytes: Uint8Array,
  begin: number,
  end: number,
  dtype: SafetensorsDtype,
): Float32Array {
  const raw = bytes.buffer.slice(
    bytes.byteOffset + begin,
    bytes.byteOffset + end,
  ) as ArrayBuffer;
  if (dtype === "F32") return new Float32Array(raw);
  const words = new Uint16Array(raw);
  return dtype === "F16" ? decodeFp16Array(words) : decodeBf16Array(words);
}
