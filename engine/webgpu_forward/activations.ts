/**
 * The activations of one forward step on the device: one float32 buffer
 * per role, sized for a number of tokens and of logit rows and grown (to
 * the next power of two) when a step needs more. Each role has its own
 * buffer so that no dispatch binds one buffer twice.
 *
 * @module
 */

import type { ModelParams } from "../model_params.ts";

/** The per-step buffers, each [tokens or rows, width] float32. */
export interface StepBuffers {
  readonly x: GPUBuffer;
  readonly normed: GPUBuffer;
  readonly q: GPUBuffer;
  readonly k: GPUBuffer;
  readonly v: GPUBuffer;
  readonly attn: GPUBuffer;
  readonly out: GPUBuffer;
  readonly gate: GPUBuffer;
  readonly up: GPUBuffer;
  /** Projections before Gemma 3's q/k norms. */
  readonly tmp: GPUBuffer;
  /** Final-normed rows whose logits are wanted. */
  readonly rows: GPUBuffer;
  readonly logits: GPUBuffer;
}

/** Buffers for up to `tokens` tokens and `rows` logit rows, reused across steps. */
export class Activations {
  readonly #device: GPUDevice;
  readonly #p: ModelParams;
  #tokens = 0;
  #rows = 0;
  #buffers?: StepBuffers;

  constructor(device: GPUDevice, params: ModelParams) {
    this.#device = device;
    this.#p = params;
  }

  /** Buffers that hold at least `tokens` tokens and `rows` logit rows. */
  get(tokens: number, rows: number): StepBuffers {
    if (this.#buffers && tokens <= this.#tokens && rows <= this.#rows) {
      return this.#buffers;
    }
    this.destroy();
    const grow = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
    this.#tokens = Math.max(this.#tokens, grow(tokens));
    this.#rows = Math.max(this.#rows, grow(rows));
    const p = this.#p, t = this.#tokens;
    const q = p.numQHeads * p.headDim, kv = p.numKvHeads * p.headDim;
    const make = (floats: number, label: string) =>
      this.#device.createBuffer({
        size: Math.max(16, floats * 4),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC |
          GPUBufferUsage.COPY_DST,
        label: `forward ${label}`,
      });
    this.#buffers = {
      x: make(t * p.hiddenSize, "x"),
      normed: make(t * p.hiddenSize, "normed"),
      q: make(t * q, "q"),
      k: make(t * kv, "k"),
      v: make(t * kv, "v"),
      attn: make(t * q, "attn"),
      out: make(t * p.hiddenSize, "out"),
      gate: make(t * p.intermediateSize, "gate"),
      up: make(t * p.intermediateSize, "up"),
      tmp: make(t * Math.max(q, kv), "tmp"),
      rows: make(this.#rows * p.hiddenSize, "rows"),
      logits: make(this.#rows * p.vocabSize, "logits"),
    };
    return this.#buffers;
  }

  /** Frees the buffers (a later get() makes new ones). */
  destroy(): void {
    if (this.#buffers) {
      for (const b of Object.values(this.#buffers)) b.destroy();
    }
    this.#buffers = undefined;
  }
}
