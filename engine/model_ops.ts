/**
 * The contract between the forward pass and the target that runs its
 * non-attention ops (attention goes through each layer's backend). A
 * target packs every weight matrix once, at load, into its own layout,
 * then runs the step's matmuls on those packed weights; the row-wise and
 * elementwise ops (RMSNorm, RoPE, the gated activation, the residual add,
 * the logit soft-cap) are part of the contract too, so a target whose
 * activations live elsewhere (a GPU) can keep the whole step there.
 *
 * Targets: `typescript` (engine/model_ops_typescript.ts, the oracle) and
 * `native` (engine/model_ops_native.ts). A WebGPU target would implement
 * the same interface over GPU buffers; see that file's notes.
 *
 * @module
 */

import type { Matrix } from "./matmul.ts";
import type { RmsNormOptions } from "./ops.ts";
import type { RopeTable } from "./rope.ts";

/** The names of the ops targets. */
export const OPS_TARGETS = ["typescript", "native"] as const;

/** Where the non-attention ops of a forward pass run. */
export type OpsTarget = typeof OPS_TARGETS[number];

/** A weight matrix in a target's packed layout; only that target may read it. */
export interface PackedMatrix {
  /** The target that packed it. */
  readonly target: OpsTarget;
  /** Output features (PyTorch's out_features). */
  readonly rows: number;
  /** Input features (PyTorch's in_features). */
  readonly cols: number;
  /** The packed elements; layout and storage (float32, bf16 bits) are the target's own. */
  readonly data: Float32Array | Uint16Array;
}

/** Options for {@linkcode ModelOps.matmul}. */
export interface PackedMatmulOptions {
  /** Added to every output row. shape [weight.rows], float32 */
  readonly bias?: Float32Array;
  /** Where to write; must not alias x. Allocated when omitted. shape [n, weight.rows], float32 */
  readonly out?: Float32Array;
}

/** The non-attention ops of a decoder, on one target. */
export interface ModelOps {
  /** The target these ops run on; it packs and reads only its own matrices. */
  readonly target: OpsTarget;
  /** What runs, in words, e.g. `native matmul on avx512_vnni, 2 threads`. */
  readonly description: string;
  /** Packs a `[rows, cols]` weight once, at load. */
  pack(weight: Matrix): PackedMatrix;
  /**
   * out = x W^T (+ bias).
   *
   * @param x shape [n, weight.cols], float32
   * @returns `out`: shape [n, weight.rows], float32
   */
  matmul(
    x: Float32Array,
    weight: PackedMatrix,
    options?: PackedMatmulOptions,
  ): Float32Array;
  /** RMSNorm of each row; see engine/ops.ts `rmsNorm`. */
  rmsNorm(
    x: Float32Array,
    weight: Float32Array,
    options: RmsNormOptions,
  ): Float32Array;
  /** Rotates every head in place; see engine/rope.ts `applyRope`. */
  applyRope(x: Float32Array, table: RopeTable): Float32Array;
  /** gate = act(gate) * up, in place; see engine/ops.ts `gatedActivation`. */
  gatedActivation(
    gate: Float32Array,
    up: Float32Array,
    activation: "silu" | "gelu_tanh",
  ): Float32Array;
  /** a += b, the residual connection. */
  addInPlace(a: Float32Array, b: Float32Array): Float32Array;
  /** x = cap * tanh(x / cap), in place (Gemma 2's final logits). */
  softcap(x: Float32Array, cap: number): Float32Array;
}

/** A packed weight handed to a target that did not pack it. */
export function checkPackedBy(
  weight: PackedMatrix,
  target: OpsTarget,
): void {
  if (weight.target !== target) {
    throw new TypeError(
      `A weight packed by the ${weight.target} ops target was passed to the ${target} target: pack it with that target's pack()`,
    );
  }
}
