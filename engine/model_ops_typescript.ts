/**
 * The `typescript` ops target: engine/ops.ts, engine/matmul.ts and
 * engine/rope.ts as they are, accumulating in float64. It runs anywhere
 * and is the oracle the other targets are tested against.
 *
 * @module
 */

import { matmul } from "./matmul.ts";
import { checkPackedBy, type ModelOps } from "./model_ops.ts";
import { addInPlace, gatedActivation, rmsNorm, softcap } from "./ops.ts";
import { applyRope } from "./rope.ts";

/**
 * The TypeScript ops. Packing is the identity: matmul.ts reads PyTorch's
 * row-major [out, in] layout directly, so no copy is made.
 *
 * @example Usage
 * ```ts
 * import { typescriptOps } from "./model_ops_typescript.ts";
 * import assert from "node:assert/strict";
 *
 * const w = typescriptOps.pack({ data: Float32Array.of(1, 2, 3, 4), rows: 2, cols: 2 });
 * assert.deepEqual([...typescriptOps.matmul(Float32Array.of(1, 1), w)], [3, 7]);
 * ```
 */
export const typescriptOps: ModelOps = {
  target: "typescript",
  description: "TypeScript ops (float64 accumulation)",
  pack(weight) {
    if (weight.data.length !== weight.rows * weight.cols) {
      throw new RangeError(
        `pack: weight has ${weight.data.length} elements but claims shape [${weight.rows}, ${weight.cols}]`,
      );
    }
    return { target: "typescript", ...weight };
  },
  matmul(x, weight, options) {
    checkPackedBy(weight, "typescript");
    const { data, rows, cols } = weight;
    if (!(data instanceof Float32Array)) {
      throw new TypeError(
        "The typescript ops target reads float32 weights only: pack with typescriptOps.pack()",
      );
    }
    return matmul(x, { data, rows, cols }, options);
  },
  rmsNorm,
  applyRope,
  gatedActivation,
  addInPlace,
  softcap,
};
