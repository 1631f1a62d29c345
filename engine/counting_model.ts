/**
 * A test model for the engine and the server: the next token is (last
 * token + 1) mod 32, whatever the batch, so any lost, duplicated or
 * reordered token shows. It still writes K/V and attends through the real
 * backend of layer 0, so cache traffic and block reuse are exercised.
 *
 * @module
 */

import { attributeBackendError } from "../core/backend_errors.ts";
import { withPlan } from "../core/plan_fallback.ts";
import type { EngineModel } from "./engine.ts";
import type { ForwardBatch, LayerAttention } from "./forward_batch.ts";

/** Vocabulary of the counting model; 31 is its EOS in the tests. */
export const COUNTING_VOCAB = 32;

/** Ways to break or slow the counting model. */
export interface CountingModelOptions {
  /** Every logit NaN (a broken backend). */
  readonly nan?: boolean;
  /** NaN logits only for rows whose input token is this id. */
  readonly nanFor?: number;
  /** Sleep this long per forward (to keep streams open). */
  readonly delayMs?: number;
}

/** The counting model over a one-layer, head_dim 8 attention. */
export function countingModel(o: CountingModelOptions = {}): EngineModel {
  return {
    vocabSize: COUNTING_VOCAB,
    async forward(batch: ForwardBatch, attention: readonly LayerAttention[]) {
      const { backend, cache } = attention[0];
      const n = batch.tokens.length;
      const kv = Float32Array.from(
        { length: n * 8 },
        (_, i) => batch.tokens[i >> 3] / 32,
      );
      const out = new Float32Array(n * 8);
      try {
        await backend.write(cache, {
          keys: kv,
          values: kv,
          slotMapping: batch.slotMapping,
        });
        await backend.attend(
          cache,
          withPlan(backend).plan(batch.plan),
          { query: kv, out },
        );
      } catch (error) {
        // As the transformer does: the report names the backend and layer.
        throw attributeBackendError(error, {
          backend: backend.name,
          target: backend.target,
          layer: cache.config.index,
        });
      }
      if (!out.every(Number.isFinite)) {
        throw new Error(
          "Attention read an unwritten slot: the output is not finite",
        );
      }
      if (o.delayMs) await new Promise((r) => setTimeout(r, o.delayMs));
      const logits = new Float32Array(batch.logitRows.length * COUNTING_VOCAB)
        .fill(-10);
      batch.logitRows.forEach((row, i) => {
        const token = batch.tokens[row];
        logits[i * COUNTING_VOCAB + (token + 1) % COUNTING_VOCAB] = 10;
        if (token === o.nanFor) logits[i * COUNTING_VOCAB] = NaN;
      });
      if (o.nan) logits.fill(NaN);
      return logits;
    },
  };
}
