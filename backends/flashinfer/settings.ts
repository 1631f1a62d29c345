/**
 * The flashinfer backend's settings, as the schema its definition declares
 * (core/settings.ts checks them before create()): both are native only.
 *
 * @example Usage
 * ```ts
 * import { FLASHINFER_SETTINGS, UNLIMITED_CHUNK_KEYS } from "./settings.ts";
 * import { resolveSettings } from "../../core/settings.ts";
 * import assert from "node:assert/strict";
 *
 * const flashinfer = { name: "flashinfer", settings: FLASHINFER_SETTINGS };
 * assert.deepEqual(resolveSettings(flashinfer, "native"), {
 *   kernelPath: "auto",
 *   maxChunkKeys: UNLIMITED_CHUNK_KEYS,
 * });
 * ```
 *
 * @module
 */

import type { BackendSetting } from "../../core/settings.ts";
import { KERNEL_PATH_SETTING } from "../../native/mod.ts";

/** The most keys a split-KV chunk may hold: the default, "no limit". */
export const UNLIMITED_CHUNK_KEYS = 2 ** 31 - 1;

/** The flashinfer settings (all on native): its definition's schema. */
export const FLASHINFER_SETTINGS: readonly BackendSetting[] = [
  KERNEL_PATH_SETTING,
  {
    name: "maxChunkKeys",
    type: "integer",
    min: 1,
    max: UNLIMITED_CHUNK_KEYS,
    default: UNLIMITED_CHUNK_KEYS,
    targets: ["native"],
    description:
      "Longest split-KV chunk in keys (tests shrink it to merge many chunks); the default means no limit",
  },
];
