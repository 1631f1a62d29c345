/**
 * The core: exact number formats and their codecs, quantization scales, the
 * paged KV cache manager, the backend contract, per-layer selection, the
 * registry, and the fp64 reference attention that is the oracle for all of it.
 *
 * @module
 */

export * from "./dtype.ts";
export * from "./fp16.ts";
export * from "./bf16.ts";
export * from "./fp8_e4m3.ts";
export * from "./fp8_e5m2.ts";
export * from "./int8.ts";
export * from "./codec.ts";
export * from "./scales.ts";
export * from "./block_pool.ts";
export * from "./blocks_for_budget.ts";
export * from "./kv_cache_errors.ts";
export * from "./kv_cache_manager.ts";
export * from "./pad_slot_mapping.ts";
export * from "./layer.ts";
export * from "./capabilities.ts";
export * from "./batch.ts";
export * from "./paged_tables.ts";
export * from "./sequence_slots.ts";
export * from "./backend.ts";
export * from "./backend_errors.ts";
export * from "./backend_checks.ts";
export { guardBackend, type GuardTarget } from "./backend_guard.ts";
export * from "./define_backend.ts";
export * from "./plan_fallback.ts";
export * from "./reference_attention.ts";
export * from "./model_config.ts";
export * from "./registry.ts";
export * from "./selector.ts";
export * from "./selection_report.ts";
export * from "./prng.ts";
export * from "./settings.ts";
export * from "./settings_plan.ts";
