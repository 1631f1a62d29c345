/**
 * Section `model`: the demo model end to end (engine/transformer.ts, the
 * reference backend), one prefill of a fixed text per KV cache variant;
 * per variant the mean log-likelihood difference (nats/token) and top-1
 * next-token agreement against the fp32 cache, and the mean and max
 * KL(p16 || p) and top-1 agreement against the bf16 cache (the 16-bit cache
 * an 8-bit one replaces), with every layer in that dtype and with
 * sliding-window layers kept in fp32 (`--kv-cache-dtype-skip-layers
 * sliding_window`).
 *
 * @module
 */

import type { AttentionBackend } from "../../core/backend.ts";
import type { Int8Scheme, KvCacheDtype } from "../../core/dtype.ts";
import type { LayerKind } from "../../core/layer.ts";
import {
  DEFAULT_SCALES,
  estimateScales,
  type LayerKvScales,
} from "../../core/scales.ts";
import { createReferenceBackend } from "../../backends/reference/mod.ts";
import type { Transformer } from "../../engine/transformer.ts";
import type { CacheVariant, ScaleSource } from "./kernels.ts";
import { prefillBatch, type Recorded } from "./model_support.ts";

/** A variant with one scale source, under one of the two plans. */
export interface ModelRow {
  readonly variant: string;
  readonly source: ScaleSource;
  /** "all layers" or "sliding-window layers fp32". */
  readonly plan: string;
  /** Mean over predicted tokens of log p(variant) - log p(fp32), nats. */
  readonly meanLlDiff: number;
  /** Mean of |log p(variant) - log p(fp32)|, nats. */
  readonly meanAbsLlDiff: number;
  /** Fraction of positions whose argmax matches fp32's. */
  readonly top1Agreement: number;
  /** Mean over positions of KL(p_bf16 || p_variant) on the full next-token distribution, nats. */
  readonly meanKl16: number;
  /** Largest per-position KL(p_bf16 || p_variant), nats. */
  readonly maxKl16: number;
  /** Fraction of positions whose argmax matches the bf16 cache's. */
  readonly top1Agreement16: number;
}

/** What {@linkcode runModel} measures. */
export interface ModelReport {
  readonly tokens: number;
  /** fp32 cache: mean negative log-likelihood, nats/token. */
  readonly baselineNll: number;
  readonly rows: ModelRow[];
}

/** Options for {@linkcode runModel}. */
export interface ModelOptions {
  readonly text: string;
  /** Another text of the same kind: calibrated scales come from it. */
  readonly calibrationText: string;
  readonly variants: readonly CacheVariant[];
  /** Also run each variant with sliding-window layers kept in fp32. @default true */
  readonly skipSliding?: boolean;
}

/** Runs the fp32 baseline, then every variant x scale source x plan. */
export async function runModel(
  model: Transformer,
  opts: ModelOptions,
): Promise<ModelReport> {
  const tok = model.tokenizer;
  if (!tok) {
    throw new Error("The model has no tokenizer: load it from a directory");
  }
  const ids = tok.encode(opts.text);
  const backend = createReferenceBackend();
  const base = await forward(model, backend, ids, () => ({ kvDtype: "fp32" }));
  const cal = await forward(
    model,
    backend,
    tok.encode(opts.calibrationText),
    () => ({ kvDtype: "fp32" }),
  );
  const vocab = model.config.vocabSize;
  const logp = logProbs(base.logits, ids, vocab);
  // The 16-bit reference: every layer in bf16, as a bf16 model would serve.
  const b16 = await forward(model, backend, ids, () => ({ kvDtype: "bf16" }));
  const logp16 = logProbs(b16.logits, ids, vocab);
  const rows: ModelRow[] = [];
  const plans = opts.skipSliding === false ? [false] : [false, true];
  for (const v of opts.variants) {
    for (const source of v.sources) {
      for (const keepSliding of plans) {
        const run = await forward(model, backend, ids, (layer, kind) => {
          if (keepSliding && kind === "sliding_window") {
            return { kvDtype: "fp32" };
          }
          const from = source === "dynamic"
            ? base.recorded[layer]
            : cal.recorded[layer];
          const scales = source === "dynamic" || source === "calibrated"
            ? estimateScales(from.keys, from.values, v.kvDtype, {
              zeroPoint: v.zeroPoint ?? false,
            })
            : DEFAULT_SCALES;
          return { kvDtype: v.kvDtype, int8Scheme: v.int8Scheme, scales };
        });
        const lp = logProbs(run.logits, ids, vocab);
        let diff = 0, abs = 0, agree = 0, agree16 = 0, kl = 0, maxKl = 0;
        for (let t = 0; t < lp.chosen.length; t++) {
          const d = lp.chosen[t] - logp.chosen[t];
          diff += d, abs += Math.abs(d);
          if (lp.argmax[t] === logp.argmax[t]) agree++;
          if (lp.argmax[t] === logp16.argmax[t]) agree16++;
          const k = klDivergence(
            logp16.all.subarray(t * vocab, (t + 1) * vocab),
            lp.all.subarray(t * vocab, (t + 1) * vocab),
          );
          kl += k;
          maxKl = Math.max(maxKl, k);
        }
        const n = lp.chosen.length;
        rows.push({
          variant: v.label,
          source,
          plan: keepSliding ? "sliding-window layers fp32" : "all layers",
          meanLlDiff: diff / n,
          meanAbsLlDiff: abs / n,
          top1Agreement: agree / n,
          meanKl16: kl / n,
          maxKl16: maxKl,
          top1Agreement16: agree16 / n,
        });
      }
    }
  }
  await backend.dispose();
  const nll = -logp.chosen.reduce((a, b) => a + b, 0) / logp.chosen.length;
  return { tokens: ids.length, baselineNll: nll, rows };
}

/** The cache a layer gets: dtype, int8 scheme and scales. */
interface LayerChoice {
  readonly kvDtype: KvCacheDtype;
  readonly int8Scheme?: Int8Scheme;
  readonly scales?: LayerKvScales;
}

async function forward(
  model: Transformer,
  backend: AttentionBackend,
  ids: readonly number[],
  choose: (layer: number, kind: LayerKind) => LayerChoice,
): Promise<{ logits: Float32Array; recorded: Recorded[] }> {
  const { batch, numBlocks, blockSize, recorded, attention } = prefillBatch(
    model,
    backend,
    ids,
  );
  const layers = await Promise.all(
    model.modelSpec.layers.map(async (spec, l) => {
      const c = choose(l, spec.kind);
      const cache = await backend.createCache({
        ...spec,
        kvDtype: c.kvDtype,
        ...(c.int8Scheme ? { int8Scheme: c.int8Scheme } : {}),
        blockSize,
      }, { numBlocks, scales: c.scales ?? DEFAULT_SCALES });
      return { backend: attention[l], cache };
    }),
  );
  const logits = await model.forward(batch, layers);
  return { logits, recorded };
}

/**
 * Per predicted position t (token t+1 given 0..t): its log-prob, the argmax
 * and the whole log-softmax row.
 */
function logProbs(logits: Float32Array, ids: readonly number[], vocab: number) {
  const n = ids.length - 1;
  const chosen = new Float64Array(n), argmax = new Int32Array(n);
  // shape [n, vocab], float64
  const all = new Float64Array(n * vocab);
  for (let t = 0; t < n; t++) {
    const row = logits.subarray(t * vocab, (t + 1) * vocab);
    let max = -Infinity, best = 0, sum = 0;
    for (let i = 0; i < vocab; i++) if (row[i] > max) (max = row[i], best = i);
    for (let i = 0; i < vocab; i++) sum += Math.exp(row[i] - max);
    const logZ = max + Math.log(sum);
    for (let i = 0; i < vocab; i++) all[t * vocab + i] = row[i] - logZ;
    chosen[t] = row[ids[t + 1]] - logZ;
    argmax[t] = best;
  }
  return { chosen, argmax, all };
}

/**
 * KL(p || q) = sum_i p_i (log p_i - log q_i) in nats, from log-probabilities
 * (float64). Terms with p_i = 0 add nothing; rounding can leave a tiny
 * negative total, which is clamped to 0.
 *
 * @example Usage
 * ```ts
 * import { klDivergence } from "./model.ts";
 * import assert from "node:assert/strict";
 *
 * const p = Float64Array.of(Math.log(0.5), Math.log(0.5));
 * const q = Float64Array.of(Math.log(0.25), Math.log(0.75));
 * const expected = 0.5 * Math.log(0.5 / 0.25) + 0.5 * Math.log(0.5 / 0.75);
 * assert.ok(Math.abs(klDivergence(p, q) - expected) < 1e-15);
 * assert.equal(klDivergence(p, p), 0);
 * ```
 */
export function klDivergence(
  logP: Float64Array,
  logQ: Float64Array,
): number {
  let kl = 0;
  for (let i = 0; i < logP.length; i++) {
    const p = Math.exp(logP[i]);
    if (p > 0) kl += p * (logP[i] - logQ[i]);
  }
  return Math.max(0, kl);
}
