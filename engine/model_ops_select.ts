/**
 * Choosing the ops target: `native` when the addon loads and has the ops
 * exports, else `typescript`, with the reason in words. A target the
 * caller names is never silently replaced: asking for `native` without the
 * addon is an error that says how to build it.
 *
 * @module
 */

import { probeNativeAddon } from "../native/probe.ts";
import { type ModelOps, OPS_TARGETS, type OpsTarget } from "./model_ops.ts";
import { createNativeOps, nativeOpsUnavailable } from "./model_ops_native.ts";
import { typescriptOps } from "./model_ops_typescript.ts";

/** The ops chosen and why. */
export interface OpsSelection {
  readonly ops: ModelOps;
  /** e.g. `native: the addon is available` or `typescript: native addon not built: ...`. */
  readonly reason: string;
}

/**
 * Picks the ops target: `requested`, or by default the best available.
 *
 * @throws {Error} When `requested` is unknown, or is `native` and the addon cannot run it.
 *
 * @example Usage
 * ```ts
 * import { selectModelOps } from "./model_ops_select.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(selectModelOps("typescript").ops.target, "typescript");
 * const auto = selectModelOps();
 * assert.match(auto.reason, /^(native|typescript): /);
 * ```
 */
export function selectModelOps(requested?: OpsTarget): OpsSelection {
  if (requested !== undefined && !OPS_TARGETS.includes(requested)) {
    throw new Error(
      `Unknown ops target "${requested}": pass one of ${
        OPS_TARGETS.join(", ")
      }`,
    );
  }
  if (requested === "typescript") {
    return { ops: typescriptOps, reason: "typescript: requested" };
  }
  const probe = probeNativeAddon();
  const why = probe.available
    ? nativeOpsUnavailable(probe.addon)
    : probe.reason;
  if (why === undefined && probe.available) {
    const ops = createNativeOps(probe.addon);
    const how = requested ? "requested" : "the addon is available";
    return { ops, reason: `native: ${how} (${ops.description})` };
  }
  if (requested === "native") {
    throw new Error(`The native ops target is unavailable: ${why}`);
  }
  return { ops: typescriptOps, reason: `typescript: ${why}` };
}
