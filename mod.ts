/**
 * kvplug: a framework in which LLM attention backends are plugins, built for
 * 8-bit (FP8 E4M3, FP8 E5M2, INT8) paged KV caches.
 *
 * Import the core (formats, cache manager, contract, selector, oracle), the
 * reference backend to copy from, the built-in registry, and the engine
 * (continuous batching over the paged cache, with `generate()`).
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
 * @example Generating text with an fp8 KV cache
 * ```ts
 * import { loadEngine, referenceBackend } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * // Engines are created with an awaited factory, not `new Engine()`:
 * // backends allocate their caches asynchronously (see Engine's JSDoc).
 * const engine = await loadEngine(new URL("./models/demo-gemma2", import.meta.url).pathname, {
 *   backends: [referenceBackend],
 *   select: { kvCacheDtype: "fp8_e4m3" },
 *   calculateKvScales: true, // scales from the first prefill, then fixed
 * });
 * const text = await engine.generate("A time to", { temperature: 0, maxTokens: 4 });
 * assert.equal(typeof text, "string");
 * assert.equal(engine.cache.numFreeBlocks, engine.cache.numBlocks); // blocks returned
 * await engine.shutdown();
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
export {
  Engine,
  type EngineModel,
  type EngineOptions,
  type EngineTokenizer,
} from "./engine/engine.ts";
export { loadEngine, type LoadEngineOptions } from "./engine/engine_load.ts";
export type { ModelOpsTarget } from "./engine/model_loader.ts";
export {
  DEFAULT_SAMPLING,
  type SamplingParams,
  samplingParams,
  SamplingParamsError,
} from "./engine/sampling_params.ts";
export {
  parseSchedulingPolicy,
  RequestTooLargeError,
  type ScheduledSequence,
  Scheduler,
  type SchedulerConfig,
  type SchedulerOutput,
  SCHEDULING_POLICIES,
  type SchedulingPolicy,
} from "./engine/scheduler.ts";
export { EngineMetrics } from "./engine/metrics.ts";
export {
  type FinishReason,
  Sequence,
  type SequenceStatus,
} from "./engine/sequence.ts";
export type { ForwardBatch, LayerAttention } from "./engine/forward_batch.ts";
export type {
  OutputDelta,
  RequestResult,
  RequestStream,
} from "./engine/request_stream.ts";
export {
  Transformer,
  type TransformerOptions,
  type TransformerParts,
} from "./engine/transformer.ts";
// Types that public fields of RequestStream and Transformer name, exported
// so that the documented API is complete (deno doc --lint's private-type-ref).
export type { Sampler } from "./engine/sampler.ts";
export type { StopChecker } from "./engine/stop_checker.ts";
export type {
  Activation,
  ModelParams,
  RopeParams,
  RopeScaling,
} from "./engine/model_params.ts";
export type { LayerWeights, ModelWeights } from "./engine/weights.ts";
export type { ChatMessage, ModelTokenizer } from "./engine/tokenizer.ts";
export {
  type ModelOps,
  OPS_TARGETS,
  type OpsTarget,
  type PackedMatmulOptions,
  type PackedMatrix,
} from "./engine/model_ops.ts";
export type { Matrix } from "./engine/matmul.ts";
export type { RmsNormOptions } from "./engine/ops.ts";
export type { RopeTable } from "./engine/rope.ts";
export {
  SAFETENSORS_DTYPES,
  type SafetensorsDtype,
  type Tensor,
} from "./engine/safetensors.ts";
