// The fa3 WebGPU numerics: the kernels follow the specification in
// bench/accuracy/low_precision_emulation.ts (an emulation in TypeScript,
// not a backend), the int8 dot product's two paths agree bit for bit, and
// two-level accumulation matters at long context. Every error is measured
// against the fp64 oracle on the cache as read back. Fixed seeds.
import assert from "node:assert/strict";
import { emulateLowPrecisionDecode } from "../../bench/accuracy/low_precision_emulation.ts";
import { createFa3WebGpuBackend } from "./webgpu_backend.ts";
import {
  layerOf,
  named,
  runDecode,
  SKIP_REASON,
} from "./webgpu_test_support.ts";

const ignore = SKIP_REASON !== undefined;

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    m = Math.max(m, Number.isNaN(d) ? Infinity : d);
  }
  return m;
}

// With promotion every block, the kernel's promotion points (aligned to
// page indices, so that a pass of keys never splits a group) are the
// emulation's, and only f32 rounding order and exp() differ: 1e-4. Without
// promotion, an exp() one ulp off can flip a bf16 rounding of O: a few
// bf16 ulps (2^-6 relative). Every 2 blocks (the default), the emulation
// counts blocks from its last promotion instead: the difference must stay
// below half the emulation's own error against the oracle.
for (const input of ["int8", "fp8_e4m3"] as const) {
  for (const promotion of [true, false]) {
    for (const every of [1, 2]) {
      Deno.test({
        name: named(
          `attend() follows the low-precision emulation on a 4096-token decode (${input}, promotion ${
            promotion ? "on" : "off"
          }, every ${every} blocks)`,
        ),
        ignore,
        async fn() {
          const backend = await createFa3WebGpuBackend({
            // In order: the emulation keeps one running max per sequence
            // (split-KV's passes each quantize P against their own).
            settings: {
              accumulationPromotion: promotion,
              promoteEveryBlocks: every,
              splitKv: false,
            },
          });
          const config = layerOf({ kvDtype: input, blockSize: 64 });
          const run = await runDecode(backend, config, {
            seqLen: 4096,
            seed: 3,
          });
          backend.dispose();
          const emulated = emulateLowPrecisionDecode(
            config,
            run.query,
            run.keys,
            run.values,
            {
              input,
              promotion,
              blockSize: 64,
              promoteEveryBlocks: every,
              scales: run.scales,
            },
          );
          const toEmulation = maxDiff(run.out, emulated);
          const toOracle = maxDiff(emulated, run.expected);
          const bound = (e: number) =>
            !promotion
              ? 1e-4 + 2 ** -6 * Math.abs(e)
              : every === 1
              ? 1e-4
              : toOracle / 2;
          const bad = emulated.findIndex((e, i) =>
            !(Math.abs(run.out[i] - e) <= bound(e))
          );
          assert.equal(
            bad,
            -1,
            `element ${bad}: webgpu ${run.out[bad]}, emulation ${
              emulated[bad]
            } (max |webgpu - emulation| ${toEmulation}; |emulation - oracle| ${toOracle}, |webgpu - oracle| ${run.maxAbsError})`,
          );
        },
      });
    }
  }
}

// Split-KV (the default) runs 8 passes of 512 keys here, each quantizing P
// against its own running max, merged in f32: it leaves the in-order
// emulation's exact path but must stay as close to the oracle as it.
for (const input of ["int8", "fp8_e4m3"] as const) {
  Deno.test({
    name: named(
      `split-KV stays within the in-order emulation's error on a 4096-token decode (${input})`,
    ),
    ignore,
    async fn() {
      const backend = await createFa3WebGpuBackend();
      const config = layerOf({ kvDtype: input, blockSize: 64 });
      const run = await runDecode(backend, config, { seqLen: 4096, seed: 3 });
      backend.dispose();
      const emulated = emulateLowPrecisionDecode(
        config,
        run.query,
        run.keys,
        run.values,
        { input, promotion: true, blockSize: 64, scales: run.scales },
      );
      const toOracle = maxDiff(emulated, run.expected);
      assert.ok(
        run.maxAbsError <= toOracle,
        `split-KV |webgpu - oracle| ${run.maxAbsError} > the emulation's ${toOracle}`,
      );
    },
  });
}
