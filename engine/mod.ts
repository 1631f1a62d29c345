/**
 * The engine: continuous batching over the paged KV cache, with
 * `generate()`. Open one with {@linkcode loadEngine} (a model directory and
 * the backends to select from) or build one from parts with
 * {@linkcode Engine.create}; the {@linkcode Scheduler} admits and preempts
 * sequences, the {@linkcode Transformer} runs the forward pass through each
 * layer's selected attention backend, and {@linkcode samplingParams} checks
 * a request's sampling options.
 *
 * Backends come from `@kvplug/attention/backends` (the built-in registry) or
 * `@kvplug/attention/backends/<name>`; the contract they implement is the
 * package root, `@kvplug/attention`.
 *
 * @example Generating text with an fp8 KV cache
 * ```ts
 * import { loadEngine } from "./mod.ts";
 * import referenceBackend from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * // Engines are created with an awaited factory, not `new Engine()`:
 * // backends allocate their caches asynchronously (see Engine's JSDoc).
 * const engine = await loadEngine(new URL("../models/demo-gemma2", import.meta.url).pathname, {
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

export {
  Engine,
  type EngineModel,
  type EngineOptions,
  type EngineTokenizer,
} from "./engine.ts";
export { loadEngine, type LoadEngineOptions } from "./engine_load.ts";
export type { ModelOpsTarget } from "./model_loader.ts";
export {
  DEFAULT_SAMPLING,
  type SamplingParams,
  samplingParams,
  SamplingParamsError,
} from "./sampling_params.ts";
export {
  parseSchedulingPolicy,
  RequestTooLargeError,
  type ScheduledSequence,
  Scheduler,
  type SchedulerConfig,
  type SchedulerOutput,
  SCHEDULING_POLICIES,
  type SchedulingPolicy,
} from "./scheduler.ts";
export { EngineMetrics } from "./metrics.ts";
export {
  type FinishReason,
  Sequence,
  type SequenceStatus,
} from "./sequence.ts";
export type { ForwardBatch, LayerAttention } from "./forward_batch.ts";
export type {
  OutputDelta,
  RequestResult,
  RequestStream,
} from "./request_stream.ts";
export {
  Transformer,
  type TransformerOptions,
  type TransformerParts,
} from "./transformer.ts";
// Types that public fields of RequestStream and Transformer name, exported
// so that the documented API is complete (deno doc --lint's private-type-ref).
export type { Sampler } from "./sampler.ts";
export type { StopChecker } from "./stop_checker.ts";
export type {
  Activation,
  ModelParams,
  RopeParams,
  RopeScaling,
} from "./model_params.ts";
export type { LayerWeights, ModelWeights } from "./weights.ts";
export type { ChatMessage, ModelTokenizer } from "./tokenizer.ts";
export {
  type ModelOps,
  OPS_TARGETS,
  type OpsTarget,
  type PackedMatmulOptions,
  type PackedMatrix,
} from "./model_ops.ts";
export type { Matrix } from "./matmul.ts";
export type { RmsNormOptions } from "./ops.ts";
export type { RopeTable } from "./rope.ts";
export {
  SAFETENSORS_DTYPES,
  type SafetensorsDtype,
  type Tensor,
} from "./safetensors.ts";
