/**
 * The decoder forward pass kept on one WebGPU device: the same steps and
 * the same `forward(batch, attention)` as engine/transformer.ts, but the
 * weights are uploaded once, every op is a WGSL kernel (kernels.ts), each
 * layer's cache write and attention are recorded through its backend's
 * encodeWrite/encodeAttend (webgpu/device_attention.ts), and the whole
 * step goes into one command encoder with ONE read-back: the logits of
 * `batch.logitRows` only. Deno's mapAsync has a latency floor, so a
 * read-back per layer would cost more than the layer.
 *
 * @module
 */

import type { AttentionBackend } from "../../core/backend.ts";
import { withPlan } from "../../core/plan_fallback.ts";
import { type ModelSpec, parseModelConfig } from "../../core/model_config.ts";
import {
  canWriteOnDevice,
  checkHostSlots,
  type DeviceAttendIo,
  type DeviceWork,
  type DeviceWriteIo,
  sharedWebGpuDevice,
  Submission,
} from "../../webgpu/mod.ts";
import { checkForwardInputs } from "../forward_checks.ts";
import type { ForwardBatch, LayerAttention } from "../forward_batch.ts";
import { loadSafetensors } from "../load_safetensors.ts";
import { type ModelParams, parseModelParams } from "../model_params.ts";
import { ropeTable } from "../rope.ts";
import type { RopeParams } from "../rope_params.ts";
import { ModelTokenizer } from "../tokenizer.ts";
import type { TransformerParts } from "../transformer.ts";
import { buildWeights, type ModelWeights, weightShapes } from "../weights.ts";
import { Activations } from "./activations.ts";
import { type DeviceWeights, uploadWeights } from "./device_weights.ts";
import { ForwardKernels } from "./kernels.ts";

/** Options for {@linkcode WebGpuTransformer.load} and {@linkcode WebGpuTransformer.create}. */
export interface WebGpuTransformerOptions {
  /**
   * The device for weights and activations; every layer's backend must
   * run on it.
   * @default the shared device (sharedWebGpuDevice())
   */
  readonly device?: GPUDevice;
}

/** What a host model already parsed (a Transformer has all of it). */
export interface ParsedModel {
  readonly config: ModelParams;
  readonly modelSpec: ModelSpec;
  readonly weights: ModelWeights;
  readonly tokenizer?: ModelTokenizer;
}

/** A decoder-only model whose forward pass runs on one WebGPU device. */
export class WebGpuTransformer {
  readonly config: ModelParams;
  readonly modelSpec: ModelSpec;
  readonly tokenizer?: ModelTokenizer;
  readonly device: GPUDevice;
  /** Logits per row (the engine's EngineModel.vocabSize). */
  readonly vocabSize: number;
  readonly #weights: DeviceWeights;
  readonly #kernels: ForwardKernels;
  readonly #acts: Activations;

  private constructor(
    model: ParsedModel,
    device: GPUDevice,
    kernels: ForwardKernels,
  ) {
    this.config = model.config;
    this.modelSpec = model.modelSpec;
    this.tokenizer = model.tokenizer;
    this.device = device;
    this.vocabSize = model.config.vocabSize;
    this.#kernels = kernels;
    this.#weights = uploadWeights(device, model.weights);
    this.#acts = new Activations(device, model.config);
  }

  /**
   * Uploads a parsed model's weights and compiles the kernels (once per
   * device).
   *
   * @example From a host model
   * ```ts ignore
   * const host = await Transformer.load("models/demo-gemma2");
   * const gpu = await WebGpuTransformer.fromModel(host);
   * ```
   */
  static async fromModel(
    model: ParsedModel,
    options: WebGpuTransformerOptions = {},
  ): Promise<WebGpuTransformer> {
    const device = options.device ?? (await sharedWebGpuDevice()).device;
    const kernels = await ForwardKernels.create(device);
    return new WebGpuTransformer(model, device, kernels);
  }

  /** Builds from in-memory parts (config.json object, tensors). */
  static create(
    parts: TransformerParts,
    options: WebGpuTransformerOptions = {},
  ): Promise<WebGpuTransformer> {
    const config = parseModelParams(parts.config);
    return WebGpuTransformer.fromModel({
      config,
      modelSpec: parseModelConfig(parts.config),
      weights: buildWeights(parts.tensors, config, parts.source ?? "<memory>"),
      tokenizer: parts.tokenizer,
    }, options);
  }

  /**
   * Loads config.json, the safetensors checkpoint and the tokenizer from a
   * model directory, as Transformer.load does, and uploads the weights.
   *
   * @example Usage
   * ```ts ignore
   * const model = await WebGpuTransformer.load("models/demo-gemma2");
   * const logits = await model.forward(batch, attention); // WebGPU backends
   * ```
   */
  static async load(
    dir: string,
    options: WebGpuTransformerOptions = {},
  ): Promise<WebGpuTransformer> {
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
    return await WebGpuTransformer.create(
      { config, tensors, tokenizer, source: dir },
      options,
    );
  }

  /**
   * Runs one step on the device and returns the logits of the rows named
   * by `batch.logitRows`, the only data read back.
   *
   * @param attention One entry per layer, in layer order; every backend
   * must be device-resident (encodeAttend and encodeWrite) on this device.
   * @returns shape [batch.logitRows.length, vocabSize], float32
   * @throws {Error} Naming the first layer whose backend cannot run here.
   */
  async forward(
    batch: ForwardBatch,
    attention: readonly LayerAttention[],
  ): Promise<Float32Array> {
    checkForwardInputs(this, batch, attention);
    this.#checkResident(attention, batch.slotMapping);
    const p = this.config, w = this.#weights, K = this.#kernels;
    const n = batch.tokens.length, m = batch.logitRows.length;
    if (n === 0 || m === 0) return new Float32Array(0);
    const h = p.hiddenSize, f = p.intermediateSize;
    const qDim = p.numQHeads * p.headDim, kvDim = p.numKvHeads * p.headDim;
    const norm = { eps: p.rmsNormEps, addOne: p.normAddOne };
    this.#kernels.trimUniforms();
    const b = this.#acts.get(n, m);
    const device = this.device;
    device.pushErrorScope("validation");
    const job = new Submission(device);
    const works: DeviceWork[] = [];
    try {
      const slots = job.storage(batch.slotMapping);
      const tables = new Map<RopeParams, { cos: GPUBuffer; sin: GPUBuffer }>();
      const plans = new Map<AttentionBackend, unknown>();
      K.embed(job, {
        tokens: job.storage(batch.tokens),
        embed: w.embed,
        out: b.x,
        numTokens: n,
        hidden: h,
        scale: p.embedScale,
      });
      for (let l = 0; l < p.numLayers; l++) {
        const lw = w.layers[l];
        const { backend, cache } = attention[l];
        const resident = backend as unknown as DeviceBackend;
        K.rmsNorm(job, {
          src: b.x,
          weight: lw.inputNorm,
          dst: b.normed,
          numRows: n,
          dim: h,
          ...norm,
        });
        for (
          const [proj, dst, width, bias, headNorm] of [
            [lw.q, b.q, qDim, lw.qBias, lw.qNorm],
            [lw.k, b.k, kvDim, lw.kBias, lw.kNorm],
            [lw.v, b.v, kvDim, lw.vBias, undefined],
          ] as const
        ) {
          K.matmul(job, {
            x: b.normed,
            weight: proj,
            bias,
            out: headNorm ? b.tmp : dst,
            n,
            m: width,
            k: h,
          });
          if (headNorm) {
            K.rmsNorm(job, {
              src: b.tmp,
              weight: headNorm,
              dst,
              numRows: n * width / p.headDim,
              dim: p.headDim,
              ...norm,
            });
          }
        }
        const rope = p.rope[l];
        let table = tables.get(rope);
        if (!table) {
          const t = ropeTable(batch.positions, rope, p.headDim);
          table = { cos: job.storage(t.cos), sin: job.storage(t.sin) };
          tables.set(rope, table);
        }
        for (const [x, width] of [[b.q, qDim], [b.k, kvDim]] as const) {
          K.rope(job, {
            x,
            ...table,
            numTokens: n,
            rowSize: width,
            headDim: p.headDim,
          });
        }
        works.push(resident.encodeWrite(job.encoder, cache, {
          keys: b.k,
          values: b.v,
          slotMapping: slots,
          numTokens: n,
        }));
        if (!plans.has(backend)) {
          plans.set(
            backend,
            withPlan(backend).plan(batch.plan),
          );
        }
        works.push(
          resident.encodeAttend(job.encoder, cache, plans.get(backend), {
            query: b.q,
            out: b.attn,
          }),
        );
        this.#project(job, b.attn, lw.o, lw.oBias, b.out, n, h, qDim);
        this.#residual(job, b.out, lw.postAttnNorm, b.x, n);
        K.rmsNorm(job, {
          src: b.x,
          weight: lw.preMlpNorm,
          dst: b.normed,
          numRows: n,
          dim: h,
          ...norm,
        });
        this.#project(job, b.normed, lw.gate, lw.gateBias, b.gate, n, f, h);
        this.#project(job, b.normed, lw.up, lw.upBias, b.up, n, f, h);
        K.gatedActivation(job, {
          gate: b.gate,
          up: b.up,
          count: n * f,
          activation: p.activation,
        });
        this.#project(job, b.gate, lw.down, lw.downBias, b.out, n, h, f);
        this.#residual(job, b.out, lw.postMlpNorm, b.x, n);
      }
      // Only the rows whose logits are wanted are normed and projected
      // (one per sequence for a prefill), and only they are read back.
      K.rmsNorm(job, {
        src: b.x,
        weight: w.finalNorm,
        dst: b.rows,
        numRows: m,
        dim: h,
        gather: job.storage(batch.logitRows),
        ...norm,
      });
      K.matmul(job, {
        x: b.rows,
        weight: w.lmHead,
        out: b.logits,
        n: m,
        m: p.vocabSize,
        k: h,
        softcap: p.finalLogitSoftcap,
      });
      const bytes = await job.read(b.logits, 0, m * p.vocabSize * 4);
      return new Float32Array(bytes);
    } finally {
      for (const work of works) work.release();
      const error = await device.popErrorScope();
      if (error) {
        // deno-lint-ignore no-unsafe-finally
        throw new Error(
          `The WebGPU forward pass failed on the device: ${error.message}`,
        );
      }
    }
  }

  /** Frees the weights and activations (the kernels stay cached per device). */
  dispose(): void {
    this.#weights.destroy();
    this.#acts.destroy();
  }

  #project(
    job: Submission,
    x: GPUBuffer,
    weight: GPUBuffer,
    bias: GPUBuffer | undefined,
    out: GPUBuffer,
    n: number,
    m: number,
    k: number,
  ): void {
    this.#kernels.matmul(job, { x, weight, bias, out, n, m, k });
  }

  /** x += postNorm ? norm(out) : out, the residual connection. */
  #residual(
    job: Submission,
    out: GPUBuffer,
    postNorm: GPUBuffer | undefined,
    x: GPUBuffer,
    n: number,
  ): void {
    const h = this.config.hiddenSize;
    if (postNorm) {
      this.#kernels.rmsNorm(job, {
        src: out,
        weight: postNorm,
        dst: x,
        numRows: n,
        dim: h,
        eps: this.config.rmsNormEps,
        addOne: this.config.normAddOne,
        accumulate: true,
      });
    } else this.#kernels.add(job, { x, y: out, count: n * h });
  }

  /**
   * Every layer's backend records on this device, and the slots fit its
   * cache (the GPU would skip a bad slot silently).
   */
  #checkResident(
    attention: readonly LayerAttention[],
    slots: Int32Array,
  ): void {
    attention.forEach(({ backend, cache }, l) => {
      const what =
        `Layer ${l}'s attention backend "${backend.name}" (target ${backend.target})`;
      if (!canWriteOnDevice(backend)) {
        throw new Error(
          `${what} is not device-resident: the WebGPU forward pass records the cache write and attention on the GPU (encodeWrite and encodeAttend); serve every layer with a WebGPU backend (xformers, flashinfer or fa3 with target webgpu), or use the host Transformer`,
        );
      }
      if (backend.device !== this.device) {
        throw new Error(
          `${what} runs on another GPUDevice than the model's weights: create the backend with the model's device (WebGpuTransformer.device; both default to sharedWebGpuDevice())`,
        );
      }
      try {
        checkHostSlots(slots, cache.numBlocks * cache.config.blockSize);
      } catch (cause) {
        throw new RangeError(`Layer ${l}: ${(cause as Error).message}`, {
          cause,
        });
      }
    });
  }
}

/** A backend as the forward pass calls it, once #checkResident passed. */
interface DeviceBackend {
  encodeWrite(
    encoder: GPUCommandEncoder,
    cache: unknown,
    io: DeviceWriteIo,
  ): DeviceWork;
  encodeAttend(
    encoder: GPUCommandEncoder,
    cache: unknown,
    plan: unknown,
    io: DeviceAttendIo,
  ): DeviceWork;
}
