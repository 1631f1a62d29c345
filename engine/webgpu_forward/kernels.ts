/**
 * The forward pass's own WGSL kernels (wgsl/, one op per file), compiled
 * once per device through webgpu/pipeline_cache.ts, and recorded into a
 * caller's {@linkcode Submission}: nothing here submits or reads back.
 * Every op mirrors an engine/ops.ts, engine/matmul.ts or engine/rope.ts
 * function (the oracle its tests compare with). No optional feature
 * (shader-f16, subgroups) is used.
 *
 * @module
 */

import {
  createBufferFrom,
  grid2d,
  packParams,
  type ParamField,
  pipelineCacheFor,
  type Submission,
} from "../../webgpu/mod.ts";
import add from "./wgsl/add.wgsl" with { type: "text" };
import embedding from "./wgsl/embedding.wgsl" with { type: "text" };
import gatedActivation from "./wgsl/gated_activation.wgsl" with {
  type: "text",
};
import matmul from "./wgsl/matmul.wgsl" with { type: "text" };
import matmulRow from "./wgsl/matmul_row.wgsl" with { type: "text" };
import rmsNorm from "./wgsl/rms_norm.wgsl" with { type: "text" };
import rope from "./wgsl/rope.wgsl" with { type: "text" };

/**
 * Rows of x per matmul workgroup: 1 (matmul_row.wgsl: one row of x, k a
 * multiple of 4, the decode case), else 4 (the tiled matmul.wgsl).
 */
const MATMUL_ROWS = [1, 4] as const;
// Invocations per workgroup of the elementwise kernels (their WG constant).
const WG = 64;

type Pipelines = Map<string, GPUComputePipeline>;

/** Options for {@linkcode ForwardKernels.rmsNorm}. */
export interface RmsNormArgs {
  /** shape [*, dim], float32 */
  readonly src: GPUBuffer;
  /** shape [dim], float32 */
  readonly weight: GPUBuffer;
  /** shape [numRows, dim], float32; must not be `src`. */
  readonly dst: GPUBuffer;
  readonly numRows: number;
  readonly dim: number;
  readonly eps: number;
  /** Scale by (1 + w) (Gemma). */
  readonly addOne: boolean;
  /** Row i reads src row gather[i]. shape [numRows], int32 */
  readonly gather?: GPUBuffer;
  /** dst += y instead of dst = y (a residual add after a post-norm). */
  readonly accumulate?: boolean;
}

/** Options for {@linkcode ForwardKernels.matmul}. */
export interface MatmulArgs {
  /** shape [n, k], float32 */
  readonly x: GPUBuffer;
  /** shape [m, k], float32 (PyTorch's [out, in]) */
  readonly weight: GPUBuffer;
  /** shape [m], float32 */
  readonly bias?: GPUBuffer;
  /** shape [n, m], float32; must not be `x`. */
  readonly out: GPUBuffer;
  readonly n: number;
  readonly m: number;
  readonly k: number;
  /** out = cap * tanh(out / cap) after the bias. */
  readonly softcap?: number;
}

/** The compiled kernels of one device, and their uniform buffers. */
export class ForwardKernels {
  readonly device: GPUDevice;
  readonly #pipelines: Pipelines;
  readonly #uniforms = new Map<string, GPUBuffer>();
  readonly #unused: GPUBuffer;

  private constructor(device: GPUDevice, pipelines: Pipelines) {
    this.device = device;
    this.#pipelines = pipelines;
    // Bound where a variant does not read (no bias, no gather): WebGPU
    // wants every declared binding filled.
    this.#unused = device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.STORAGE,
      label: "forward: unused binding",
    });
  }

  /** Compiles every kernel variant once (cached per device). */
  static async create(device: GPUDevice): Promise<ForwardKernels> {
    const cache = pipelineCacheFor(device);
    const variants: [string, string, Record<string, number>][] = [
      ["embedding", embedding, {}],
      ["rope", rope, {}],
      ["add", add, {}],
      ["silu", gatedActivation, { ACT: 0 }],
      ["gelu_tanh", gatedActivation, { ACT: 1 }],
    ];
    for (const gather of [0, 1]) {
      for (const accumulate of [0, 1]) {
        variants.push([
          `rms_norm:${gather}:${accumulate}`,
          rmsNorm,
          { GATHER: gather, ACCUMULATE: accumulate },
        ]);
      }
    }
    for (const rows of MATMUL_ROWS) {
      const code = rows === 1 ? matmulRow : matmul;
      for (const bias of [0, 1]) {
        for (const cap of [0, 1]) {
          variants.push([
            `matmul:${rows}:${bias}:${cap}`,
            code,
            { HAS_BIAS: bias, SOFTCAP: cap },
          ]);
        }
      }
    }
    // One at a time: Mesa llvmpipe stalled for minutes on first dispatch
    // after many concurrent pipeline creations.
    const compiled: GPUComputePipeline[] = [];
    for (const [label, code, constants] of variants) {
      compiled.push(
        await cache.compute(code, { constants, label: `forward ${label}` }),
      );
    }
    return new ForwardKernels(
      device,
      new Map(variants.map(([label], i) => [label, compiled[i]])),
    );
  }

  /** x = embed[tokens] * scale. tokens: shape [numTokens], int32 */
  embed(
    job: Submission,
    a: {
      tokens: GPUBuffer;
      embed: GPUBuffer;
      out: GPUBuffer;
      numTokens: number;
      hidden: number;
      scale: number;
    },
  ): void {
    const params = this.#params([
      ["u32", a.numTokens],
      ["u32", a.hidden],
      ["f32", a.scale],
    ]);
    job.dispatch(
      this.#get("embedding"),
      [params, a.tokens, a.embed, a.out],
      this.#grid(a.numTokens),
    );
  }

  /** RMSNorm of each row (engine/ops.ts rmsNorm), optionally gathered or accumulated. */
  rmsNorm(job: Submission, a: RmsNormArgs): void {
    const params = this.#params([
      ["u32", a.numRows],
      ["u32", a.dim],
      ["f32", a.eps],
      ["f32", a.addOne ? 1 : 0],
    ]);
    const pipeline = this.#get(
      `rms_norm:${a.gather ? 1 : 0}:${a.accumulate ? 1 : 0}`,
    );
    job.dispatch(
      pipeline,
      [params, a.src, a.weight, a.gather ?? this.#unused, a.dst],
      this.#grid(a.numRows),
    );
  }

  /**
   * Rotates every head in place (engine/rope.ts applyRope).
   * x: shape [numTokens, rowSize]; cos, sin: shape [numTokens, headDim / 2]
   */
  rope(
    job: Submission,
    a: {
      x: GPUBuffer;
      cos: GPUBuffer;
      sin: GPUBuffer;
      numTokens: number;
      rowSize: number;
      headDim: number;
    },
  ): void {
    const params = this.#params([
      ["u32", a.numTokens],
      ["u32", a.rowSize],
      ["u32", a.headDim / 2],
    ]);
    job.dispatch(
      this.#get("rope"),
      [params, a.x, a.cos, a.sin],
      this.#grid(Math.ceil(a.numTokens * a.rowSize / 2 / WG)),
    );
  }

  /** out = x W^T (+ bias), optionally soft-capped (engine/matmul.ts matmul). */
  matmul(job: Submission, a: MatmulArgs): void {
    const rows = a.n <= 1 && a.k % 4 === 0 ? 1 : 4;
    const params = this.#params([
      ["u32", a.n],
      ["u32", a.m],
      ["u32", a.k],
      ["f32", a.softcap ?? 1],
    ]);
    const pipeline = this.#get(
      `matmul:${rows}:${a.bias ? 1 : 0}:${a.softcap ? 1 : 0}`,
    );
    const groups: [number, number] = [
      Math.ceil(a.m / 64),
      Math.ceil(Math.max(1, a.n) / rows),
    ];
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (groups[0] > max || groups[1] > max) {
      throw new RangeError(
        `A matmul of [${a.n}, ${a.k}] by [${a.m}, ${a.k}]^T needs ${groups} workgroups but one WebGPU dispatch holds at most ${max} per dimension: split the batch`,
      );
    }
    job.dispatch(
      pipeline,
      [params, a.x, a.weight, a.bias ?? this.#unused, a.out],
      groups,
    );
  }

  /** gate = act(gate) * up, in place (engine/ops.ts gatedActivation). */
  gatedActivation(
    job: Submission,
    a: {
      gate: GPUBuffer;
      up: GPUBuffer;
      count: number;
      activation: "silu" | "gelu_tanh";
    },
  ): void {
    job.dispatch(
      this.#get(a.activation),
      [this.#params([["u32", a.count]]), a.gate, a.up],
      this.#grid(Math.ceil(a.count / WG)),
    );
  }

  /** x += y (the residual connection). */
  add(
    job: Submission,
    a: { x: GPUBuffer; y: GPUBuffer; count: number },
  ): void {
    job.dispatch(
      this.#get("add"),
      [this.#params([["u32", a.count]]), a.x, a.y],
      this.#grid(Math.ceil(a.count / WG)),
    );
  }

  /**
   * Frees the cached uniform buffers once there are many (prefills of many
   * lengths). Call between steps only: recorded, unsubmitted work may still
   * bind them.
   */
  trimUniforms(keep = 1024): void {
    if (this.#uniforms.size <= keep) return;
    for (const buffer of this.#uniforms.values()) buffer.destroy();
    this.#uniforms.clear();
  }

  /** Releases the kernels' own buffers (the pipelines stay cached per device). */
  destroy(): void {
    this.trimUniforms(0);
    this.#unused.destroy();
  }

  #get(label: string): GPUComputePipeline {
    return this.#pipelines.get(label)!;
  }

  #grid(items: number): [number, number] {
    return grid2d(items, this.device.limits.maxComputeWorkgroupsPerDimension);
  }

  // A decode step repeats the same few parameter sets every layer and every
  // step, so each distinct set is uploaded once and kept.
  #params(fields: readonly ParamField[]): GPUBuffer {
    const key = fields.map(([t, v]) => `${t}${v}`).join(",");
    let buffer = this.#uniforms.get(key);
    if (buffer === undefined) {
      buffer = createBufferFrom(
        this.device,
        packParams(fields),
        GPUBufferUsage.UNIFORM,
        "forward params",
      );
      this.#uniforms.set(key, buffer);
    }
    return buffer;
  }
}
