/**
 * The fa3 backend's settings, as the schema its definition declares
 * (core/settings.ts checks them before create()). One declaration per
 * setting and target, so the two targets can no longer read the same
 * setting differently; promoteEveryBlocks has one domain per target
 * because the kernels differ (native: 1..4; WebGPU: powers of two up to 32,
 * so a pass of 2048 keys never splits a group).
 *
 * @example Usage
 * ```ts
 * import { FA3_SETTINGS } from "./settings.ts";
 * import { resolveSettings } from "../../core/settings.ts";
 * import assert from "node:assert/strict";
 *
 * const fa3 = { name: "fa3", settings: FA3_SETTINGS };
 * assert.deepEqual(resolveSettings(fa3, "webgpu"), {
 *   accumulationPromotion: true,
 *   promoteEveryBlocks: 2,
 *   splitKv: true,
 *   packedDot: "auto",
 * });
 * assert.throws(
 *   () => resolveSettings(fa3, "native", { promoteEveryBlocks: 8 }),
 *   /setting promoteEveryBlocks must be an integer from 1 to 4, got 8/,
 * );
 * ```
 *
 * @module
 */

import type { BackendSetting } from "../../core/settings.ts";
import { KERNEL_PATH_SETTING, type KernelPathName } from "../../native/mod.ts";

/** How int8 dot products are computed in WGSL. */
export type PackedDot = "auto" | "builtin" | "shift";

/** The WebGPU target's settings, defaults filled in. */
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

/** The native target's settings, defaults filled in. */
export interface Fa3NativeSettings {
  /** @default true */
  readonly accumulationPromotion: boolean;
  /** @default 2 */
  readonly promoteEveryBlocks: number;
  /** @default "auto" */
  readonly kernelPath: "auto" | KernelPathName;
}

/** Allowed WebGPU promotion intervals: powers of two, so a pass of 2048 keys never splits a group. */
export const PROMOTE_EVERY_CHOICES: readonly number[] = [1, 2, 4, 8, 16, 32];

/** Every fa3 setting, with its domain per target. */
export const FA3_SETTINGS: readonly BackendSetting[] = [
  {
    name: "accumulationPromotion",
    type: "boolean",
    default: true,
    description:
      "Two-level accumulation; false keeps O and l in the 16-bit accumulator for the whole sequence (shows the long-context loss)",
  },
  {
    name: "promoteEveryBlocks",
    type: "integer",
    min: 1,
    max: 4,
    default: 2,
    targets: ["native"],
    description:
      "KV blocks summed in the low-precision accumulator before each promotion to f32",
  },
  {
    name: "promoteEveryBlocks",
    type: "integer",
    min: 1,
    max: 32,
    values: PROMOTE_EVERY_CHOICES,
    default: 2,
    targets: ["webgpu"],
    description:
      "KV blocks summed in the low-precision accumulator before each promotion to f32",
  },
  {
    name: "splitKv",
    type: "boolean",
    default: true,
    targets: ["webgpu"],
    description:
      "With promotion, run a sequence's passes of keys in parallel and merge them in f32; false runs them in order with one running max",
  },
  {
    name: "packedDot",
    type: "enum",
    values: ["auto", "builtin", "shift"],
    default: "auto",
    targets: ["webgpu"],
    description:
      "int8 dot products with dot4I8Packed (builtin) or shifts; auto picks the builtin when the runtime has it",
  },
  KERNEL_PATH_SETTING,
];
