/**
 * Checks a forward call's inputs before any layer runs, so that a batch
 * that does not add up, or a cache built for another layer shape, is an
 * error naming the field instead of a wrong answer.
 *
 * @module
 */

import type { LayerSpec } from "../core/layer.ts";
import type { ModelSpec } from "../core/model_config.ts";
import type { ForwardBatch, LayerAttention } from "./forward_batch.ts";
import type { ModelParams } from "./model_params.ts";

const LAYER_FIELDS = [
  "kind",
  "numQHeads",
  "numKvHeads",
  "headDim",
  "slidingWindow",
  "softCap",
  "scale",
] as const satisfies readonly (keyof LayerSpec)[];

/**
 * Throws a RangeError naming the first inconsistency between the batch,
 * the per-layer attention and the model.
 */
export function checkForwardInputs(
  model: { readonly config: ModelParams; readonly modelSpec: ModelSpec },
  batch: ForwardBatch,
  attention: readonly LayerAttention[],
): void {
  const { config: p, modelSpec } = model;
  const n = batch.tokens.length;
  const fail = (msg: string) => {
    throw new RangeError(msg);
  };
  if (attention.length !== p.numLayers) {
    fail(
      `attention has ${attention.length} entries but the model has ${p.numLayers} layers: pass one per layer`,
    );
  }
  for (
    const [name, len] of [
      ["positions", batch.positions.length],
      ["slotMapping", batch.slotMapping.length],
      ["plan.numTokens", batch.plan.numTokens],
    ] as const
  ) {
    if (len !== n) {
      fail(`batch.${name} is ${len} long but the batch has ${n} tokens`);
    }
  }
  batch.tokens.forEach((t, i) => {
    if (!(t >= 0 && t < p.vocabSize)) {
      fail(
        `batch.tokens[${i}] is ${t}, outside the vocabulary 0..${
          p.vocabSize - 1
        }`,
      );
    }
  });
  batch.logitRows.forEach((r, i) => {
    if (!(r >= 0 && r < n)) {
      fail(
        `batch.logitRows[${i}] is ${r}, outside the batch's rows 0..${n - 1}`,
      );
    }
  });
  attention.forEach(({ cache }, l) => {
    const want = modelSpec.layers[l];
    for (const field of LAYER_FIELDS) {
      if (cache.config[field] !== want[field]) {
        fail(
          `Layer ${l}'s cache has ${field} ${
            cache.config[field]
          } but the model's layer ${l} has ${
            want[field]
          }: build its LayerConfig from transformer.modelSpec.layers[${l}]`,
        );
      }
    }
  });
}
