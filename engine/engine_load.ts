/**
 * An engine from a model directory in one call: load the weights and the
 * tokenizer, probe the given backends, select one per layer, read the
 * calibration file if any, and create the engine.
 *
 * @module
 */

import type { BackendDefinition } from "../core/backend.ts";
import {
  probeBackends,
  selectBackends,
  type SelectOptions,
} from "../core/selector.ts";
import { Engine, type EngineOptions } from "./engine.ts";
import { loadKvQuantParams } from "./engine_kv_scales.ts";
import { loadModelOn, type ModelOpsTarget } from "./model_loader.ts";

/** Options for {@linkcode loadEngine}: the engine's, less what the directory supplies. */
export interface LoadEngineOptions extends
  Omit<
    EngineOptions,
    "model" | "tokenizer" | "plan" | "backends" | "maxModelLen"
  > {
  /**
   * Backend definitions to select from, e.g. `[referenceBackend]` or
   * `await builtinRegistry().loadAll()`.
   */
  readonly backends: readonly BackendDefinition[];
  /** KV dtype, target, skipped layers, block size. @default {} (model dtype, best target) */
  readonly select?: SelectOptions;
  /** A calibration file (docs/CALIBRATION.md); sets `calibration`. */
  readonly kvQuantParamsPath?: string;
  /** Longest prompt + output. @default config.json's max_position_embeddings, else 2048 */
  readonly maxModelLen?: number;
  /**
   * Where the non-attention ops run (engine/model_loader.ts). `webgpu` also
   * selects attention on the WebGPU target. @default native when the addon loads, else typescript
   */
  readonly ops?: ModelOpsTarget;
}

/**
 * Loads a model directory (config.json, safetensors, tokenizer) and
 * returns a ready engine. Shut it down when done.
 *
 * @example Greedy completion on the reference backend
 * ```ts
 * import { loadEngine } from "./engine_load.ts";
 * import referenceBackend from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const engine = await loadEngine(
 *   new URL("../models/demo-gemma2", import.meta.url).pathname,
 *   {
 *     backends: [referenceBackend],
 *     select: { kvCacheDtype: "fp8_e4m3" },
 *     calculateKvScales: true,
 *     schedulingPolicy: "guaranteed_no_evict",
 *   },
 * );
 * const text = await engine.generate("A time to", { temperature: 0, maxTokens: 3, ignoreEos: true });
 * assert.equal(engine.metrics.generationTokens, 3);
 * assert.ok(engine.kvScales.every((s) => s !== undefined && s.kScale > 0));
 * assert.equal(typeof text, "string");
 * await engine.shutdown();
 * ```
 */
export async function loadEngine(
  modelDir: string,
  o: LoadEngineOptions,
): Promise<Engine> {
  const model = await loadModelOn(modelDir, o.ops);
  const plan = selectBackends(
    model.modelSpec,
    await probeBackends(o.backends),
    o.ops === "webgpu" ? { ...o.select, target: "webgpu" } : o.select ?? {},
  );
  const raw = JSON.parse(await Deno.readTextFile(`${modelDir}/config.json`));
  const { kvQuantParamsPath, select: _, ops: __, ...rest } = o;
  const calibration = kvQuantParamsPath === undefined
    ? o.calibration
    : await loadKvQuantParams(kvQuantParamsPath, plan, o);
  return await Engine.create({
    ...rest,
    ...(calibration ? { calibration } : {}),
    model: {
      vocabSize: model.vocabSize,
      forward: (batch, attention) => model.forward(batch, attention),
    },
    tokenizer: model.tokenizer!,
    plan,
    maxModelLen: o.maxModelLen ??
      Number(raw.max_position_embeddings ?? 2048),
  });
}
