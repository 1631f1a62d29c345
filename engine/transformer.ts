/**
 * The decoder forward pass in TypeScript: embeddings, then per layer
 * norm -> q/k/v -> RoPE -> the layer's attention backend (write, attend) ->
 * o_proj -> MLP, then the final norm and the output projection. One code
 * path for Llama, Mistral, Qwen2, Gemma 2 and Gemma 3 text, switched by
 * {@linkcode ModelParams}. The non-attention ops run on one ops target
 * (engine/model_ops.ts): `native` (the Rust addon's matmul) when the addon
 * is available, else `typescript`, the oracle the others are checked against.
 *
 * @module
 */

import { attributeBackendError } from "../core/backend_errors.ts";
import type { AttentionBackend } from "../core/backend.ts";
import type { PlannedBatch } from "../core/batch.ts";
import { withPlan } from "../core/plan_fallback.ts";
import { type ModelSpec, parseModelConfig } from "../core/model_config.ts";
import { checkForwardInputs } from "./forward_checks.ts";
import type { ForwardBatch, LayerAttention } from "./forward_batch.ts";
import { loadSafetensors } from "./load_safetensors.ts";
import type { ModelOps, OpsTarget, PackedMatrix } from "./model_ops.ts";
import { selectModelOps } from "./model_ops_select.ts";
import { type ModelParams, parseModelParams } from "./model_params.ts";
import { type RopeTable, ropeTable } from "./rope.ts";
import type { RopeParams } from "./rope_params.ts";
import type { Tensor } from "./safetensors.ts";
import { ModelTokenizer } from "./tokenizer.ts";
import { buildWeights, type ModelWeights, weightShapes } from "./weights.ts";

/** What a {@linkcode Transformer} is built from. */
export interface TransformerParts {
  /** The parsed config.json. */
  readonly config: unknown;
  /** Tensors by their transformers names (extra ones are ignored). */
  readonly tensors: ReadonlyMap<string, Tensor>;
  /** Needed only for text in and out; token-id forwards run without one. */
  readonly tokenizer?: ModelTokenizer;
  /**
   * Where the parts came from, for error messages.
   * @default "<memory>"
   */
  readonly source?: string;
}

/** Options for the {@linkcode Transformer} constructor and {@linkcode Transformer.load}. */
export interface TransformerOptions {
  /**
   * Where the non-attention ops run: a target name, or a {@linkcode ModelOps}
   * (tests pass one pinned to a kernel path). Naming `native` without a
   * usable addon throws, saying how to build it.
   * @default "native" when the addon is available, else "typescript"
   */
  readonly ops?: OpsTarget | ModelOps;
}

/** One layer's matrices, packed by the ops target. */
interface PackedLayer {
  readonly q: PackedMatrix;
  readonly k: PackedMatrix;
  readonly v: PackedMatrix;
  readonly o: PackedMatrix;
  readonly gate: PackedMatrix;
  readonly up: PackedMatrix;
  readonly down: PackedMatrix;
}

/** A decoder-only language model with its weights in float32. */
export class Transformer {
  /** Everything but attention that the forward pass reads from config.json. */
  readonly config: ModelParams;
  /** Per-layer attention specs (core/model_config.ts): build each layer's LayerConfig from these. */
  readonly modelSpec: ModelSpec;
  /** The float32 weights as checked and loaded; the ops target runs on its own packed copies. */
  readonly weights: ModelWeights;
  /** Set by {@linkcode Transformer.load}; absent for models built from parts without one. */
  readonly tokenizer?: ModelTokenizer;
  /** The ops target every step runs on. */
  readonly ops: ModelOps;
  /** Why that target, e.g. `typescript: native addon not built: run ...`. */
  readonly opsReason: string;
  readonly #layers: readonly PackedLayer[];
  readonly #lmHead: PackedMatrix;

  /**
   * Builds a model from in-memory parts and packs its matrices for the ops
   * target once; throws naming a missing or misshapen tensor.
   */
  constructor(parts: TransformerParts, options: TransformerOptions = {}) {
    const source = parts.source ?? "<memory>";
    this.config = parseModelParams(parts.config);
    this.modelSpec = parseModelConfig(parts.config);
    this.weights = buildWeights(parts.tensors, this.config, source);
    this.tokenizer = parts.tokenizer;
    if (typeof options.ops === "object") {
      this.ops = options.ops;
      this.opsReason = `${options.ops.target}: passed in`;
    } else {
      ({ ops: this.ops, reason: this.opsReason } = selectModelOps(options.ops));
    }
    const ops = this.ops;
    this.#layers = this.weights.layers.map((l) => ({
      q: ops.pack(l.q),
      k: ops.pack(l.k),
      v: ops.pack(l.v),
      o: ops.pack(l.o),
      gate: ops.pack(l.gate),
      up: ops.pack(l.up),
      down: ops.pack(l.down),
    }));
    this.#lmHead = ops.pack(this.weights.lmHead);
  }

  /**
   * Loads config.json, the safetensors checkpoint (single or sharded) and
   * the tokenizer from a model directory.
   *
   * @example Usage
   * ```ts ignore
   * const model = await Transformer.load("models/demo-gemma2");
   * console.log(model.config.numLayers, model.ops.target, model.opsReason);
   * ```
   */
  static async load(
    dir: string,
    options: TransformerOptions = {},
  ): Promise<Transformer> {
    const file = `${dir}/config.json`;
    let config: unknown;
    try {
      config = JSON.parse(await Deno.readTextFile(file));
    } catch (cause) {
      throw new Error(
        `Cannot read ${file}: ${
          (cause as Error).message
        }: pass a model directory holding config.json`,
        { cause },
      );
    }
    const needed = weightShapes(parseModelParams(config));
    const [tensors, tokenizer] = await Promise.all([
      loadSafetensors(dir, { only: (name) => needed.has(name) }),
      ModelTokenizer.load(dir),
    ]);
    return new Transformer(
      { config, tensors, tokenizer, source: dir },
      options,
    );
  }

  /**
   * Runs one step: every token of the batch through every layer, writing
   * its K/V into each layer's cache, and returns the logits of the rows
   * named by `batch.logitRows`. Each distinct backend plans the batch once
   * and every layer it serves reuses that plan.
   *
   * @param attention One entry per layer, in layer order.
   * @returns shape [batch.logitRows.length, vocabSize], float32
   */
  async forward(
    batch: ForwardBatch,
    attention: readonly LayerAttention[],
  ): Promise<Float32Array> {
    checkForwardInputs(this, batch, attention);
    const p = this.config;
    const w = this.weights;
    const ops = this.ops;
    const n = batch.tokens.length;
    const h = p.hiddenSize;
    const norm = { eps: p.rmsNormEps, addOne: p.normAddOne };
    const x = new Float32Array(n * h);
    for (let t = 0; t < n; t++) {
      const row = w.embed.data.subarray(
        batch.tokens[t] * h,
        (batch.tokens[t] + 1) * h,
      );
      for (let i = 0; i < h; i++) x[t * h + i] = row[i] * p.embedScale;
    }
    const qDim = p.numQHeads * p.headDim, kvDim = p.numKvHeads * p.headDim;
    const normed = new Float32Array(n * h), out = new Float32Array(n * h);
    const q = new Float32Array(n * qDim), attn = new Float32Array(n * qDim);
    const k = new Float32Array(n * kvDim), v = new Float32Array(n * kvDim);
    const gate = new Float32Array(n * p.intermediateSize);
    const up = new Float32Array(n * p.intermediateSize);
    const tables = new Map<RopeParams, RopeTable>();
    const plans = new Map<AttentionBackend, PlannedBatch>();
    for (let l = 0; l < p.numLayers; l++) {
      const lw = w.layers[l], pw = this.#layers[l];
      const { backend, cache } = attention[l];
      ops.rmsNorm(x, lw.inputNorm, { ...norm, out: normed });
      ops.matmul(normed, pw.q, { bias: lw.qBias, out: q });
      ops.matmul(normed, pw.k, { bias: lw.kBias, out: k });
      ops.matmul(normed, pw.v, { bias: lw.vBias, out: v });
      if (lw.qNorm) ops.rmsNorm(q, lw.qNorm, { ...norm, out: q });
      if (lw.kNorm) ops.rmsNorm(k, lw.kNorm, { ...norm, out: k });
      const rope = p.rope[l];
      let table = tables.get(rope);
      if (!table) {
        table = ropeTable(batch.positions, rope, p.headDim);
        tables.set(rope, table);
      }
      ops.applyRope(q, table);
      ops.applyRope(k, table);
      try {
        await backend.write(cache, {
          keys: k,
          values: v,
          slotMapping: batch.slotMapping,
        });
        let plan = plans.get(backend);
        if (!plan) {
          plan = withPlan(backend).plan(batch.plan);
          plans.set(backend, plan);
        }
        await backend.attend(cache, plan, { query: q, out: attn });
      } catch (error) {
        // Whatever the backend threw, the report names it and the layer.
        throw attributeBackendError(error, {
          backend: backend.name,
          target: backend.target,
          layer: cache.config.index,
        });
      }
      ops.matmul(attn, pw.o, { bias: lw.oBias, out });
      if (lw.postAttnNorm) ops.rmsNorm(out, lw.postAttnNorm, { ...norm, out });
      ops.addInPlace(x, out);
      ops.rmsNorm(x, lw.preMlpNorm, { ...norm, out: normed });
      ops.matmul(normed, pw.gate, { bias: lw.gateBias, out: gate });
      ops.matmul(normed, pw.up, { bias: lw.upBias, out: up });
      ops.gatedActivation(gate, up, p.activation);
      ops.matmul(gate, pw.down, { bias: lw.downBias, out });
      if (lw.postMlpNorm) ops.rmsNorm(out, lw.postMlpNorm, { ...norm, out });
      ops.addInPlace(x, out);
    }
    // Only the rows whose logits are wanted go through the output projection:
    // for a prefill that is one row, not the whole prompt.
    const rows = new Float32Array(batch.logitRows.length * h);
    batch.logitRows.forEach((r, i) =>
      rows.set(x.subarray(r * h, (r + 1) * h), i * h)
    );
    ops.rmsNorm(rows, w.finalNorm, { ...norm, out: rows });
    const logits = ops.matmul(rows, this.#lmHead);
    return p.finalLogitSoftcap
      ? ops.softcap(logits, p.finalLogitSoftcap)
      : logits;
  }
}
