/**
 * kvplug: a framework in which LLM attention backends are plugins, built for
 * 8-bit (FP8 E4M3, FP8 E5M2, INT8) paged KV caches.
 *
 * The package root is the core contract, everything a backend author needs
 * and nothing that runs a model: the number formats and their codecs,
 * quantization scales, the paged KV cache manager, layer configurations and
 * capabilities, the backend contract ({@linkcode defineBackend},
 * {@linkcode BACKEND_API_VERSION}) and its typed errors, backend settings,
 * batch planning ({@linkcode planBatch}), the registry, the selector
 * ({@linkcode selectBackends}) and the fp64 reference attention that is the
 * oracle for all of it.
 *
 * The rest is in subpath exports (deno.json `exports`):
 *
 * - `@kvplug/attention`: this core contract (mod.ts);
 * - `@kvplug/attention/engine`: continuous batching and `generate()`
 *   (`loadEngine`, `Engine`, the scheduler and the forward pass);
 * - `@kvplug/attention/conformance`: the suite
 *   (`registerConformanceTests`, `runConformance`);
 * - `@kvplug/attention/backends`: `builtinRegistry()`, every built-in
 *   backend loaded lazily by name;
 * - `@kvplug/attention/backends/reference`, `.../xformers`,
 *   `.../flashinfer`, `.../fa3`: one backend each (its definition is the
 *   default export); the reference backend is the one to copy from.
 *
 * @example Selecting backends for a model
 * ```ts
 * import { loadModelConfig, probeBackends, selectBackends } from "./mod.ts";
 * import { builtinRegistry } from "./backends/builtin.ts";
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
 * @example Defining a backend
 * ```ts
 * import { BACKEND_API_VERSION, defineBackend } from "./mod.ts";
 * import { createReferenceBackend, REFERENCE_CAPABILITIES } from "./backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const mine = defineBackend({
 *   apiVersion: BACKEND_API_VERSION,
 *   name: "mine",
 *   version: "0.1.0",
 *   description: "the reference kernels under another name",
 *   targets: [{
 *     target: "reference",
 *     capabilities: REFERENCE_CAPABILITIES,
 *     probe: () => ({ available: true }),
 *     create: () => createReferenceBackend(),
 *   }],
 * });
 * assert.equal(mine.name, "mine");
 * ```
 *
 * @module
 */

export * from "./core/mod.ts";
