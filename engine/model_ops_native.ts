/**
 * The `native` ops target: the matmuls run in the Rust addon
 * (native/src/ops/: weights packed once into 16-row panels, a blocked,
 * register-tiled AVX-512/AVX2/scalar kernel over the persistent thread
 * pool, f32 accumulation). RMSNorm, RoPE, the gated activation, the
 * residual add and the soft-cap stay in TypeScript on the same CPU memory:
 * they are O(hidden) per token, a few microseconds each, about the cost
 * of a call into the addon. On models/demo-gemma2 they take about 6% of a
 * native decode step, matmul about 30-35%, attention (reference backend)
 * and the rest about 60% (`deno task bench model-ops`, noisy 2-core
 * machine). The step never leaves the CPU.
 *
 * A WebGPU target would implement {@linkcode ModelOps} the same way but
 * needs what this interface does not yet give: activations that stay in
 * GPU buffers between ops (a device-resident tensor type in place of
 * Float32Array), a command encoder threaded through every op so a layer is
 * one submission, and attention backends that accept device buffers
 * (webgpu/'s DeviceResidentAttention).
 *
 * @module
 */

import type {
  KernelPathName,
  NativeAddon,
  NativeOpsAddon,
} from "../native/types.ts";
import {
  checkPackedBy,
  type ModelOps,
  type PackedMatrix,
} from "./model_ops.ts";
import { typescriptOps } from "./model_ops_typescript.ts";

/** Options for {@linkcode createNativeOps}. */
export interface NativeOpsOptions {
  /**
   * A kernel path to run (a downgrade, as `KVPLUG_NATIVE_PATH`), for tests.
   * @default null (the addon's `kernelPath()`)
   */
  readonly kernelPath?: KernelPathName | null;
  /**
   * How packed weights are stored: `f32`, or `bf16` (rounded to nearest
   * even once, at pack time; half the bytes a decode step streams, widened
   * exactly on load, accumulation still f32). bf16 changes the model's
   * numbers: checkpoints trained in f32 lose about 3 significant digits.
   * @default "f32"
   */
  readonly weightDtype?: "f32" | "bf16";
}

/**
 * Why an addon cannot run the native ops, or undefined when it can: an
 * addon built before exports_ops.rs lacks them.
 */
export function nativeOpsUnavailable(addon: NativeAddon): string | undefined {
  const ops = addon as Partial<NativeOpsAddon>;
  return typeof ops.opsMatmul === "function" &&
      typeof ops.opsPackWeights === "function"
    ? undefined
    : "native addon has no opsMatmul export: rebuild with deno task build:native";
}

/**
 * The native ops over a loaded addon.
 *
 * @throws {Error} When the addon lacks the ops exports (an older build).
 *
 * @example Usage
 * ```ts
 * import { probeNativeAddon } from "../native/mod.ts";
 * import { createNativeOps } from "./model_ops_native.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = probeNativeAddon();
 * if (probe.available) {
 *   const ops = createNativeOps(probe.addon);
 *   const w = ops.pack({ data: Float32Array.of(1, 2, 3, 4), rows: 2, cols: 2 });
 *   assert.deepEqual([...ops.matmul(Float32Array.of(1, 1), w)], [3, 7]);
 * }
 * ```
 */
export function createNativeOps(
  addon: NativeAddon,
  options: NativeOpsOptions = {},
): ModelOps {
  const missing = nativeOpsUnavailable(addon);
  if (missing) throw new Error(missing);
  const native = addon as NativeAddon & NativeOpsAddon;
  const path = options.kernelPath ?? null;
  const bf16 = options.weightDtype === "bf16";
  return {
    ...typescriptOps,
    target: "native",
    description: `native matmul on ${
      path ?? native.kernelPath()
    }, ${native.poolThreads()} threads, ${
      bf16 ? "bf16" : "f32"
    } weights; other ops in TypeScript`,
    pack(weight): PackedMatrix {
      const { data, rows, cols } = weight;
      if (data.length !== rows * cols) {
        throw new RangeError(
          `pack: weight has ${data.length} elements but claims shape [${rows}, ${cols}]`,
        );
      }
      const length = native.opsPackedLength(rows, cols);
      const packed = bf16 ? new Uint16Array(length) : new Float32Array(length);
      native.opsPackWeights(data, rows, cols, packed);
      return { target: "native", rows, cols, data: packed };
    },
    matmul(x, weight, options = {}) {
      checkPackedBy(weight, "native");
      const n = x.length / weight.cols;
      const out = options.out ?? new Float32Array(n * weight.rows);
      native.opsMatmul(
        x,
        weight.data,
        weight.rows,
        weight.cols,
        options.bias ?? null,
        out,
        path,
      );
      return out;
    },
  };
}
