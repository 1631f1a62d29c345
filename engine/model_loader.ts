/**
 * Loading a model directory for the engine on an ops target: `typescript`
 * or `native` (engine/transformer.ts, host memory, ops from
 * engine/model_ops.ts) or `webgpu` (engine/webgpu_forward/, the whole step
 * on the GPU). All three give the engine the same `{vocabSize, forward}`.
 *
 * @example Loading the demo model on the TypeScript ops
 * ```ts
 * import { loadModelOn } from "./model_loader.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = "models/demo-gemma2";
 * const model = await loadModelOn(dir, "typescript");
 * const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
 * assert.equal(model.opsTarget, "typescript");
 * assert.equal(model.vocabSize, config.vocab_size);
 * assert.match(model.opsReason, /^typescript: requested/);
 * await assert.rejects(() => loadModelOn(dir, "cuda" as never), /Unknown ops target "cuda"/);
 * ```
 *
 * @module
 */

import type { ForwardBatch, LayerAttention } from "./forward_batch.ts";
import { OPS_TARGETS, type OpsTarget } from "./model_ops.ts";
import type { ModelTokenizer } from "./tokenizer.ts";
import { Transformer } from "./transformer.ts";
import { WebGpuTransformer } from "./webgpu_forward/webgpu_transformer.ts";
import type { ModelSpec } from "../core/model_config.ts";

/** Where a model's non-attention ops run. */
export type ModelOpsTarget = OpsTarget | "webgpu";

/** Every {@linkcode ModelOpsTarget}. */
export const MODEL_OPS_TARGETS: readonly ModelOpsTarget[] = [
  ...OPS_TARGETS,
  "webgpu",
];

/** A loaded model, whichever target runs it. */
export interface LoadedModel {
  readonly opsTarget: ModelOpsTarget;
  /** Why this target, in words. */
  readonly opsReason: string;
  readonly vocabSize: number;
  readonly modelSpec: ModelSpec;
  readonly tokenizer?: ModelTokenizer;
  forward(
    batch: ForwardBatch,
    attention: readonly LayerAttention[],
  ): Promise<Float32Array>;
}

/**
 * Loads `dir` on `ops`; absent: native when the addon loads, else
 * typescript (never webgpu: that needs every layer's attention on WebGPU,
 * which the caller must have selected).
 *
 * @throws {Error} For an unknown target, or `native` without the addon.
 */
export async function loadModelOn(
  dir: string,
  ops?: ModelOpsTarget,
): Promise<LoadedModel> {
  if (ops !== undefined && !MODEL_OPS_TARGETS.includes(ops)) {
    throw new Error(
      `Unknown ops target "${ops}": pass one of ${
        MODEL_OPS_TARGETS.join(", ")
      }`,
    );
  }
  if (ops === "webgpu") {
    const model = await WebGpuTransformer.load(dir);
    return {
      opsTarget: "webgpu",
      opsReason:
        "webgpu: requested (the whole decode step on the GPU, one read-back of the logits per step)",
      vocabSize: model.vocabSize,
      modelSpec: model.modelSpec,
      ...(model.tokenizer ? { tokenizer: model.tokenizer } : {}),
      forward: (batch, attention) => model.forward(batch, attention),
    };
  }
  const model = await Transformer.load(dir, ops ? { ops } : {});
  return {
    opsTarget: model.ops.target,
    opsReason: model.opsReason,
    vocabSize: model.config.vocabSize,
    modelSpec: model.modelSpec,
    ...(model.tokenizer ? { tokenizer: model.tokenizer } : {}),
    forward: (batch, attention) => model.forward(batch, attention),
  };
}
