// The fa3 WebGPU int8 dot product has two paths: dot4I8Packed (WGSL
// language feature packed_4x8_integer_dot_product) and a fallback on
// shifts. Both are exact in i32, so attention must agree bit for bit; the
// fallback is also checked against the fp64 oracle on its own, so that it
// is tested where the builtin is absent.
import assert from "node:assert/strict";
import type { LayerConfig } from "../../core/layer.ts";
import { createFa3WebGpuBackend } from "./webgpu_backend.ts";
import { hasPackedDot, PACKED_DOT_FEATURE } from "./webgpu_kernels.ts";
import {
  layerOf,
  named,
  runDecode,
  SKIP_REASON,
} from "./webgpu_test_support.ts";

const ignore = SKIP_REASON !== undefined;
// Well inside conformance's 0.1 for 8-bit compute: over 2100 keys the
// rounding of P (0.5/127 per key) averages out; observed 2.5e-3 here, and
// a fallback that mis-extends one byte in four gives 0.036.
const TOLERANCE = 1e-2;

const VARIANTS: [string, Partial<LayerConfig>, boolean][] = [
  ["int8 per_tensor with a zero point", { kvDtype: "int8" }, true],
  [
    "int8 per_token_head",
    { kvDtype: "int8", int8Scheme: "per_token_head" },
    false,
  ],
];

for (const [label, overrides, zeroPoint] of VARIANTS) {
  const config = layerOf({ ...overrides, blockSize: 32, headDim: 256 });
  const options = { seqLen: 2100, seed: 11, zeroPoint };

  Deno.test({
    name: named(`the shift fallback matches the oracle (${label})`),
    ignore,
    async fn() {
      const backend = await createFa3WebGpuBackend({
        settings: { packedDot: "shift" },
      });
      assert.equal(backend.packedDot, "shift");
      const run = await runDecode(backend, config, options);
      backend.dispose();
      assert.ok(run.maxAbsError <= TOLERANCE, `max |diff| ${run.maxAbsError}`);
    },
  });

  Deno.test({
    name: named(
      `dot4I8Packed and the shift fallback give bit-identical attention (${label})`,
    ),
    ignore: ignore || !hasPackedDot(),
    async fn() {
      const outs = [];
      for (const packedDot of ["builtin", "shift"]) {
        const backend = await createFa3WebGpuBackend({
          settings: { packedDot },
        });
        outs.push((await runDecode(backend, config, options)).out);
        backend.dispose();
      }
      assert.deepEqual(
        new Uint32Array(outs[0].buffer),
        new Uint32Array(outs[1].buffer),
      );
    },
  });
}

Deno.test({
  name: named(
    `packedDot "builtin" is refused with the fix when the runtime lacks ${PACKED_DOT_FEATURE}`,
  ),
  ignore: ignore || hasPackedDot(),
  async fn() {
    await assert.rejects(
      () => createFa3WebGpuBackend({ settings: { packedDot: "builtin" } }),
      /lacks the language feature packed_4x8_integer_dot_product: use packedDot "auto" or "shift"/,
    );
  },
});
