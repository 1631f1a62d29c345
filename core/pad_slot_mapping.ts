/**
 * Padding for slot mappings, so a batch can match a fixed (e.g. captured or
 * compiled) size.
 *
 * @module
 */

/**
 * Pads a slot mapping to a fixed length with -1, which backends skip.
 *
 * @param slots shape [numTokens], int32.
 * @param paddedLength Length of the result, at least `slots.length`.
 * @returns shape [paddedLength], int32.
 *
 * @example Pad to a captured batch size
 * ```ts
 * import { padSlotMapping } from "./pad_slot_mapping.ts";
 * import assert from "node:assert/strict";
 *
 * const padded = padSlotMapping(Int32Array.of(4, 5), 4);
 * assert.deepEqual([...padded], [4, 5, -1, -1]);
 * ```
 */
export function padSlotMapping(
  slots: Int32Array,
  paddedLength: number,
): Int32Array {
  if (!Number.isInteger(paddedLength) || paddedLength < slots.length) {
    throw new RangeError(
      `Cannot pad ${slots.length} slots to length ${paddedLength}: pass an integer of at least ${slots.length}`,
    );
  }
  const padded = new Int32Array(paddedLength).fill(-1);
  padded.set(slots);
  return padded;
}
