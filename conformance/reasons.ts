/**
 * Why a case cannot run on a target: the capability lists' reasons plus the
 * target's own `extraReasons(layer)` (limits the lists cannot express, such
 * as a GQA ratio a kernel cannot fuse). Case builders call
 * {@linkcode reasonsFor} instead of `unsupportedReasons` so that a backend
 * that follows the tutorial skips those layers instead of failing them.
 *
 * @module
 */

import type { BackendTarget } from "../core/backend.ts";
import {
  type BackendCapabilities,
  unsupportedReasons,
} from "../core/capabilities.ts";
import type { LayerConfig } from "../core/layer.ts";

/** What case builders need from a target: its capabilities and extra reasons. */
export type CaseTarget = Pick<BackendTarget, "capabilities" | "extraReasons">;

/**
 * Every reason the target refuses a layer: `unsupportedReasons()` of its
 * capabilities, then its `extraReasons(layer)`. Empty when it serves it.
 *
 * @example Usage
 * ```ts
 * import { reasonsFor } from "./reasons.ts";
 * import { REFERENCE_CAPABILITIES } from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const target = {
 *   capabilities: REFERENCE_CAPABILITIES,
 *   extraReasons: (l: { numQHeads: number; numKvHeads: number }) =>
 *     l.numQHeads / l.numKvHeads === 8 ? ["GQA ratio 8 is not fused"] : [],
 * };
 * const layer = {
 *   index: 0, kind: "full", numQHeads: 16, numKvHeads: 2, headDim: 64,
 *   scale: 0.125, kvDtype: "fp16", blockSize: 16,
 * } as const;
 * assert.deepEqual(reasonsFor(target, layer), ["GQA ratio 8 is not fused"]);
 * assert.deepEqual(reasonsFor(target, { ...layer, numKvHeads: 4 }), []);
 * ```
 */
export function reasonsFor(target: CaseTarget, layer: LayerConfig): string[] {
  return [
    ...unsupportedReasons(target.capabilities, layer),
    ...extraReasonsFor(target, layer),
  ];
}

/**
 * Only the target's `extraReasons(layer)`, as a fresh array (empty without it).
 *
 * @example Usage
 * ```ts
 * import { extraReasonsFor } from "./reasons.ts";
 * import { REFERENCE_CAPABILITIES } from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(extraReasonsFor({ capabilities: REFERENCE_CAPABILITIES }, {} as never), []);
 * ```
 */
export function extraReasonsFor(
  target: CaseTarget,
  layer: LayerConfig,
): string[] {
  return [...(target.extraReasons?.(layer) ?? [])];
}

/**
 * Accepts what `conformanceCases()` used to take (bare capabilities) as well
 * as a target, so both call styles keep working.
 *
 * @example Usage
 * ```ts
 * import { asCaseTarget } from "./reasons.ts";
 * import { REFERENCE_CAPABILITIES } from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(asCaseTarget(REFERENCE_CAPABILITIES).capabilities, REFERENCE_CAPABILITIES);
 * ```
 */
export function asCaseTarget(
  target: CaseTarget | BackendCapabilities,
): CaseTarget {
  return "capabilities" in target ? target : { capabilities: target };
}
