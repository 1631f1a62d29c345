/**
 * The serving benchmark's core: one configuration (one KV cache plan) run
 * offline on a fresh engine, every request arriving at t=0, and the
 * figures the field reports (throughput, TTFT, TPOT, effective batch size
 * per iteration, preemptions) read from the engine's metrics.
 *
 * @module
 */

import type { BackendDefinition } from "../core/backend.ts";
import type { ModelSpec } from "../core/model_config.ts";
import type { SelectionPlan } from "../core/selector.ts";
import { Engine, type EngineTokenizer } from "../engine/engine.ts";
import {
  loadKvQuantParams,
  usesLayerScales,
} from "../engine/engine_kv_scales.ts";
import type { ForwardBatch, LayerAttention } from "../engine/forward_batch.ts";
import { samplingParams } from "../engine/sampling_params.ts";
import { type DatasetShape, syntheticPrompts } from "./datasets.ts";
import type { BenchEngineOptions } from "./serve_options.ts";
import { processCpuSeconds } from "./machine.ts";
import type { ProgressState } from "./progress.ts";
import { AttentionTimer } from "./timed_attention.ts";
import { mean, type Percentiles, percentiles } from "./stats.ts";

/** The model under test, loaded once and shared by every configuration. */
export interface ServeModel {
  readonly spec: ModelSpec;
  readonly vocabSize: number;
  readonly maxModelLen: number;
  readonly tokenizer: EngineTokenizer;
  /** Logits for batch.logitRows. shape [numLogits, vocabSize], float32 */
  forward(
    batch: ForwardBatch,
    attention: readonly LayerAttention[],
  ): Promise<Float32Array>;
}

/** One configuration to run. */
export interface ServeRunOptions {
  /** Names the configuration in reports, e.g. "bf16". */
  readonly label: string;
  readonly dataset: DatasetShape;
  readonly plan: SelectionPlan;
  readonly definitions: readonly BackendDefinition[];
  /** Bytes for the KV cache of all layers. */
  readonly kvCacheMemory: number;
  /** @default 2048 */
  readonly maxNumBatchedTokens?: number;
  readonly seed: number;
  /** Called before every forward pass and once at the end. */
  readonly onProgress?: (state: ProgressState) => void;
  /** Receives the engine's warnings (the fp8 scale fallback). */
  readonly warn?: (message: string) => void;
  /**
   * Scheduling policy and K/V scale source. The scale source applies only
   * when the plan has layers with per-layer scales (a bf16 configuration
   * of the same run has none). @default max_utilization, no scale source
   */
  readonly engine?: BenchEngineOptions;
}

/** The KV pool the budget bought. */
export interface PoolFigures {
  readonly blocks: number;
  readonly blockSize: number;
  readonly bytesPerBlock: number;
  readonly bytes: number;
  readonly tokens: number;
}

/** What one configuration measured. */
export interface ServeResult {
  readonly label: string;
  /** Per-layer KV dtypes, e.g. "fp8_e4m3 x6" or "fp8_e4m3 x3, fp32 x3". */
  readonly kvDtypes: string;
  /** backend/target pairs in use. */
  readonly backends: string;
  readonly requests: number;
  readonly promptTokens: number;
  readonly outputTokens: number;
  readonly wallS: number;
  /** CPU seconds this process used during the run (NaN off Linux). */
  readonly cpuS: number;
  readonly outputTps: number;
  readonly totalTps: number;
  /** Seconds from t=0 (arrival) to the first token. */
  readonly ttftS: Percentiles;
  /** Seconds per output token after the first. */
  readonly tpotS: Percentiles;
  /** Sequences in each iteration's batch. */
  readonly batchSizes: readonly number[];
  readonly meanBatch: number;
  readonly maxBatch: number;
  readonly preemptions: number;
  /** Tokens run again because their sequence was preempted. */
  readonly recomputedTokens: number;
  readonly pool: PoolFigures;
  /** Seconds spent in the model's forward pass, and the tokens it ran. */
  readonly forwardS: number;
  /** Of forwardS, seconds in the backends' write and attend. */
  readonly attentionS: number;
  readonly forwardTokens: number;
}

/** Runs one configuration to completion and reads its figures. */
export async function runServe(
  model: ServeModel,
  o: ServeRunOptions,
): Promise<ServeResult> {
  const { dataset } = o;
  const prompts = syntheticPrompts({
    count: dataset.numRequests,
    length: dataset.inputLen,
    vocabSize: model.vocabSize,
    seed: o.seed,
  });
  let forwardMs = 0, forwardTokens = 0, t0 = 0;
  const timer = new AttentionTimer();
  const progress = () => {
    const m = engine.metrics;
    o.onProgress?.({
      done: m.requestsFinished,
      tokens: m.generationTokens,
      elapsedS: (performance.now() - t0) / 1000,
    });
  };
  const scaled = o.plan.decisions.some((d) => usesLayerScales(d.layer));
  const path = scaled ? o.engine?.kvQuantParamsPath : undefined;
  const calibration = path !== undefined
    ? await loadKvQuantParams(path, o.plan)
    : undefined;
  const engine: Engine = await Engine.create({
    model: {
      vocabSize: model.vocabSize,
      forward: async (batch, attention) => {
        progress();
        const start = performance.now();
        const logits = await model.forward(batch, timer.wrap(attention));
        forwardMs += performance.now() - start;
        forwardTokens += batch.tokens.length;
        return logits;
      },
    },
    tokenizer: model.tokenizer,
    plan: o.plan,
    backends: o.definitions,
    kvCacheMemory: o.kvCacheMemory,
    maxModelLen: model.maxModelLen,
    maxNumSeqs: dataset.maxBatch,
    maxNumBatchedTokens: o.maxNumBatchedTokens ?? 2048,
    ...(o.warn ? { warn: o.warn } : {}),
    schedulingPolicy: o.engine?.schedulingPolicy ?? "max_utilization",
    calculateKvScales: scaled && (o.engine?.calculateKvScales ?? false),
    ...(calibration ? { calibration } : {}),
  });
  // The scheduler admits a request by its prompt alone; one that can never
  // hold prompt + output would be preempted and recomputed forever.
  const perRequest = Math.ceil(
    (dataset.inputLen + dataset.outputLen - 1) / engine.cache.blockSize,
  );
  if (perRequest > engine.cache.numBlocks) {
    await engine.shutdown();
    throw new RangeError(
      `${o.label}: one request needs ${perRequest} KV blocks but the pool has ${engine.cache.numBlocks} (${engine.bytesPerBlock} bytes each): raise --kv-cache-memory to at least ${
        perRequest * engine.bytesPerBlock
      } bytes`,
    );
  }
  const params = samplingParams({
    temperature: 0,
    maxTokens: dataset.outputLen,
    ignoreEos: true,
  });
  t0 = performance.now();
  const cpu0 = processCpuSeconds();
  let results;
  try {
    const streams = prompts.map((p) => engine.addRequest(p, params));
    results = await Promise.all(streams.map((s) => s.result()));
  } finally {
    await engine.shutdown();
  }
  const wallS = (performance.now() - t0) / 1000;
  const cpuS = processCpuSeconds() - cpu0;
  progress();
  const short = results.findIndex((r) =>
    r.completionTokens !== dataset.outputLen
  );
  if (short !== -1) {
    throw new Error(
      `Request ${short} of ${o.label} produced ${
        results[short].completionTokens
      } tokens, expected ${dataset.outputLen} (finish reason ${
        results[short].finishReason
      }): the benchmark relies on ignore_eos`,
    );
  }
  const m = engine.metrics;
  const outputTokens = results.reduce((a, r) => a + r.completionTokens, 0);
  const promptTokens = results.reduce((a, r) => a + r.promptTokens, 0);
  const needed = promptTokens + outputTokens - results.length;
  const c = engine.cache;
  return {
    label: o.label,
    kvDtypes: countLabels(o.plan.decisions.map((d) => d.layer.kvDtype)),
    backends: countLabels(
      o.plan.decisions.map((d) => `${d.backend}/${d.target}`),
    ),
    requests: results.length,
    promptTokens,
    outputTokens,
    wallS,
    cpuS,
    outputTps: outputTokens / wallS,
    totalTps: (promptTokens + outputTokens) / wallS,
    ttftS: percentiles(m.ttft),
    tpotS: percentiles(m.tpot),
    batchSizes: [...m.batchSizes],
    meanBatch: mean(m.batchSizes),
    maxBatch: Math.max(0, ...m.batchSizes),
    preemptions: m.preemptions,
    recomputedTokens: m.batchTokens.reduce((a, b) => a + b, 0) - needed,
    pool: {
      blocks: c.numBlocks,
      blockSize: c.blockSize,
      bytesPerBlock: engine.bytesPerBlock,
      bytes: c.numBlocks * engine.bytesPerBlock,
      tokens: c.numBlocks * c.blockSize,
    },
    forwardS: forwardMs / 1000,
    attentionS: timer.ms / 1000,
    forwardTokens,
  };
}

/** "a x3, b x1" in first-seen order. */
function countLabels(items: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const i of items) counts.set(i, (counts.get(i) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${k} x${n}`).join(", ");
}
