/**
 * The core's fallback for the optional `plan` member (ggml style: the
 * contract marks it optional, the core supplies it): an instance without
 * one plans as the identity, so the engine and conformance always call
 * `backend.plan(batch)` once per batch and never branch on it.
 *
 * @module
 */

import type { AttentionBackend, LayerCache } from "./backend.ts";
import type { PlannedBatch } from "./batch.ts";

/** A backend instance whose `plan` is present (the core filled it in if needed). */
export type PlanningBackend<
  C extends LayerCache = LayerCache,
  P extends PlannedBatch = PlannedBatch,
> = AttentionBackend<C, P> & { plan(batch: PlannedBatch): P };

/** `B` with its `plan` member present: its own, or the identity. */
export type WithPlan<B> = B & {
  plan: "plan" extends keyof B ? NonNullable<B["plan" & keyof B]>
    : (batch: PlannedBatch) => PlannedBatch;
};

// The fallback: the core plan is the backend's plan.
const identityPlan = (batch: PlannedBatch): PlannedBatch => batch;

/**
 * Returns `backend` with a `plan` member: its own, or the identity
 * `(batch) => batch` (installed on the instance once; a frozen instance
 * gets a forwarding view instead). Idempotent and cheap, so callers may
 * apply it to any instance they were handed. Every instance a definition's
 * create() returns through defineBackend() or the registry already has it.
 *
 * @example Usage
 * ```ts
 * import { withPlan } from "./plan_fallback.ts";
 * import { planBatch } from "./batch.ts";
 * import assert from "node:assert/strict";
 *
 * // An instance without plan (other members left out for brevity).
 * const backend = withPlan({ name: "mine", target: "reference" });
 * const batch = planBatch({
 *   queryStartLoc: Int32Array.of(0, 1), seqLens: Int32Array.of(1),
 *   blockTables: Int32Array.of(0), maxBlocksPerSeq: 1, blockSize: 16,
 * });
 * assert.equal(backend.plan(batch), batch);
 * ```
 */
export function withPlan<B extends object>(backend: B): WithPlan<B> {
  type Out = WithPlan<B>;
  const { plan } = backend as { plan?: unknown };
  if (typeof plan === "function") return backend as Out;
  if (plan !== undefined) {
    const { name, target } = backend as { name?: string; target?: string };
    throw new TypeError(
      `Backend "${name}" (${target}) has a plan member that is not a function (${typeof plan}): make plan a method, or leave it out to plan as the identity`,
    );
  }
  if (Object.isExtensible(backend)) {
    Object.defineProperty(backend, "plan", {
      value: identityPlan,
      writable: true,
      configurable: true,
    });
    return backend as Out;
  }
  // Frozen or sealed: forward every member to the instance itself (bound,
  // so methods that use #private fields still see their own `this`).
  return new Proxy(backend, {
    get(target, key) {
      if (key === "plan") return identityPlan;
      const v = Reflect.get(target, key, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  }) as Out;
}
