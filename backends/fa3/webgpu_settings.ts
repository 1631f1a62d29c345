/**
 * The fa3 WebGPU backend's settings, from `create({ settings })`, checked
 * once: unknown names and wrong types are errors that name the fix.
 *
 * - `accumulationPromotion` (boolean, default true): two-level
 *   accumulation. Off keeps O and l in the 16-bit accumulator for the whole
 *   sequence, to show (and test) the long-context precision loss.
 * - `promoteEveryBlocks` (1, 2, 4, 8, 16 or 32; default 2): KV blocks summed
 *   in the low-precision accumulator before each promotion to f32.
 * - `splitKv` (boolean, default true): with promotion, run a sequence's
 *   passes of keys in parallel and merge them in f32 (split-KV, as FA3's
 *   own decode splits), each pass quantizing P against its own running
 *   max; false runs them in order, one running max for the whole sequence,
 *   exactly as bench/accuracy/low_precision_emulation.ts specifies.
 * - `packedDot` ("auto", "builtin" or "shift"; default "auto"): int8 dot
 *   products with dot4I8Packed (needs the WGSL language feature
 *   `packed_4x8_integer_dot_product`) or with shifts; "auto" picks the
 *   builtin when the runtime has it. Tests force each path.
 *
 * @example Usage
 * ```ts
 * import { parseFa3Settings } from "./webgpu_settings.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseFa3Settings({}), {
 *   accumulationPromotion: true,
 *   promoteEveryBlocks: 2,
 *   splitKv: true,
 *   packedDot: "auto",
 * });
 * assert.throws(
 *   () => parseFa3Settings({ accumulationPromotion: "no" }),
 *   /accumulationPromotion must be a boolean, got "no"/,
 * );
 * assert.throws(() => parseFa3Settings({ promote: false }), /Unknown fa3 setting "promote"/);
 * ```
 *
 * @module
 */

/** How int8 dot products are computed in WGSL. */
export type PackedDot = "auto" | "builtin" | "shift";

/** The settings, defaults filled in. */
export interface Fa3Settings {
  /** @default true */
  readonly accumulationPromotion: boolean;
  /** @default 2 */
  readonly promoteEveryBlocks: number;
  /** @default true */
  readonly splitKv: boolean;
  /** @default "auto" */
  readonly packedDot: PackedDot;
}

/** Allowed promotion intervals: powers of two, so a pass of 2048 keys never splits a group. */
export const PROMOTE_EVERY_CHOICES: readonly number[] = [1, 2, 4, 8, 16, 32];
const PACKED_DOT: readonly PackedDot[] = ["auto", "builtin", "shift"];
const KNOWN = [
  "accumulationPromotion",
  "promoteEveryBlocks",
  "splitKv",
  "packedDot",
];

/**
 * Checks `settings` and fills in the defaults.
 *
 * @throws {TypeError} On an unknown name or a value of the wrong kind.
 */
export function parseFa3Settings(
  settings: Readonly<Record<string, unknown>> = {},
): Fa3Settings {
  for (const name of Object.keys(settings)) {
    if (!KNOWN.includes(name)) {
      throw new TypeError(
        `Unknown fa3 setting "${name}": use one of ${KNOWN.join(", ")}`,
      );
    }
  }
  const {
    accumulationPromotion = true,
    promoteEveryBlocks = 2,
    splitKv = true,
    packedDot = "auto",
  } = settings;
  if (typeof splitKv !== "boolean") {
    throw new TypeError(
      `fa3 setting splitKv must be a boolean, got ${
        JSON.stringify(splitKv)
      }: pass true (passes in parallel, merged) or false (in order)`,
    );
  }
  if (typeof accumulationPromotion !== "boolean") {
    throw new TypeError(
      `fa3 setting accumulationPromotion must be a boolean, got ${
        JSON.stringify(accumulationPromotion)
      }: pass true (two-level accumulation) or false`,
    );
  }
  if (!PROMOTE_EVERY_CHOICES.includes(promoteEveryBlocks as number)) {
    throw new TypeError(
      `fa3 setting promoteEveryBlocks must be one of ${
        PROMOTE_EVERY_CHOICES.join(", ")
      }, got ${JSON.stringify(promoteEveryBlocks)}`,
    );
  }
  if (!PACKED_DOT.includes(packedDot as PackedDot)) {
    throw new TypeError(
      `fa3 setting packedDot must be one of ${PACKED_DOT.join(", ")}, got ${
        JSON.stringify(packedDot)
      }`,
    );
  }
  return {
    accumulationPromotion,
    promoteEveryBlocks: promoteEveryBlocks as number,
    splitKv,
    packedDot: packedDot as PackedDot,
  };
}
