/**
 * kvplug: a framework in which LLM attention backends are plugins, built for
 * 8-bit (FP8 E4M3, FP8 E5M2, INT8) paged KV caches.
 *
 * Import the core (formats, cache manager, contract, selector, oracle), the
 * reference backend to copy from, and the built-in registry.
 *
 * @example Selecting backends for a model
 * ```ts
 * import { builtinRegistry, loadModelConfig, probeBackends, selectBackends } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const model = await loadModelConfig(new URL("./configs/gemma-2-9b.json", import.meta.url).pathname);
 * const backends = await probeBackends(await builtinRegistry().loadAll());
 * const plan = selectBackends(model, backends, {
 *   kvCacheDtype: "fp8_e4m3",
 *   skipLayers: ["sliding_window"],
 * });
 * assert.equal(plan.decisions[0].layer.kvDtype, "bf16"); // sliding-window layer kept
 * assert.equal(plan.decisions[1].layer.kvDtype, "fp8_e4m3");
 * ```
 *
 * @module
 */

export * from "./core/mod.ts";
export {
  createReferenceBackend,
  REFERENCE_CAPABILITIES,
  type ReferenceBackend,
  ReferenceCache,
} from "./backends/reference/mod.ts";
export { default as referenceBackend } from "./backends/reference/mod.ts";
export { builtinRegistry } from "./backends/builtin.ts";
export * from "./conformance/mod.ts";
