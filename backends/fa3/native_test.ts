// The native fa3 kernels on every kernel path this CPU has: each matches
// the fp64 oracle on its own dequantized cache, the two AVX-512 int8 paths
// (vpdpwssd and vpmaddwd) agree bit for bit, and at a long context the
// error with accumulation promotion off is larger than with it on.

import assert from "node:assert/strict";
import type { LayerConfig } from "../../core/layer.ts";
import { mulberry32 } from "../../core/prng.ts";
import {
  KERNEL_PATHS,
  loadNativeAddon,
  probeNativeAddon,
} from "../../native/mod.ts";
import { nativeTestGate } from "../../native/test_support.ts";
import { runScenario, type SeqShape } from "../../conformance/scenario.ts";
import { LOW_PRECISION_KERNEL } from "../../conformance/tolerances.ts";
import {
  createFa3NativeBackend,
  type Fa3NativeOptions,
} from "./native_backend.ts";
import { FA3_CAPABILITIES } from "./capabilities.ts";

const gate = await nativeTestGate("fa3", "fa3Attend");
const SKIP = gate.skipReason;
const nativeTest = gate.test;
const probe = probeNativeAddon();
const best = probe.available ? probe.addon.kernelSelection().best : "scalar";

function layer(over: Partial<LayerConfig>): LayerConfig {
  return {
    index: 0,
    kind: "full",
    numQHeads: 8,
    numKvHeads: 2,
    headDim: 128,
    scale: 128 ** -0.5,
    kvDtype: "int8",
    int8Scheme: "per_tensor",
    blockSize: 16,
    ...over,
  } as LayerConfig;
}

/** Max |out - oracle on the dequantized cache| and the output itself. */
async function run(
  config: LayerConfig,
  seqs: SeqShape[],
  seed: number,
  options: Fa3NativeOptions,
  zeroPoint = false,
) {
  const backend = createFa3NativeBackend(
    loadNativeAddon(),
    FA3_CAPABILITIES,
    options,
  );
  const r = await runScenario(backend, config, seqs, mulberry32(seed), {
    zeroPoint,
  });
  let maxError = 0, sumError = 0;
  r.out.forEach((x, i) => {
    const e = Math.abs(x - r.refDequantized[i]);
    maxError = Math.max(maxError, Number.isNaN(e) ? Infinity : e);
    sumError += e;
  });
  return { out: r.out, maxError, meanError: sumError / r.out.length };
}

const MIXED: SeqShape[] = [
  { qLen: 1, seqLen: 1 },
  { qLen: 1, seqLen: 77 },
  { qLen: 19, seqLen: 40 },
];
const CASES: { name: string; config: Partial<LayerConfig>; zp?: boolean }[] = [
  { name: "int8 per_tensor with zero points", config: {}, zp: true },
  {
    name: "int8 per_token_head, window 13, 12 q / 2 kv heads",
    config: {
      numQHeads: 12,
      int8Scheme: "per_token_head",
      kind: "sliding_window",
      slidingWindow: 13,
    },
  },
  {
    name: "fp8_e4m3, head_dim 64, block 32",
    config: {
      kvDtype: "fp8_e4m3",
      int8Scheme: undefined,
      headDim: 64,
      blockSize: 32,
    },
  },
  {
    name: "fp8_e4m3, head_dim 256, block 64, soft-cap 2",
    config: {
      kvDtype: "fp8_e4m3",
      int8Scheme: undefined,
      headDim: 256,
      blockSize: 64,
      softCap: 2,
    },
  },
];

for (const path of KERNEL_PATHS) {
  const missing = KERNEL_PATHS.indexOf(path) > KERNEL_PATHS.indexOf(best)
    ? `this CPU's best path is ${best}`
    : undefined;
  for (const { name, config, zp } of CASES) {
    nativeTest(
      `fa3 native ${path}: mixed ${name} attention matches the fp64 oracle within the 8-bit compute bound`,
      async () => {
        for (const promotion of [true, false]) {
          const { maxError } = await run(layer(config), MIXED, 31, {
            kernelPath: path,
            accumulationPromotion: promotion,
          }, zp);
          assert.ok(
            maxError <= LOW_PRECISION_KERNEL.atol / 2,
            `promotion ${promotion}: max |out - oracle| = ${maxError}`,
          );
        }
      },
      SKIP ?? missing,
    );
  }
}

nativeTest(
  "fa3 native: vpdpwssd (avx512_vnni) and vpmaddwd (avx512) give bit-identical int8 attention",
  async () => {
    for (const { config, zp } of CASES.slice(0, 2)) {
      const [a, b] = await Promise.all(
        (["avx512", "avx512_vnni"] as const).map((p) =>
          run(layer(config), MIXED, 5, { kernelPath: p }, zp)
        ),
      );
      assert.deepEqual(a.out, b.out);
    }
  },
  SKIP ??
    (best !== "avx512_vnni" ? `this CPU's best path is ${best}` : undefined),
);

/** The error at one long context, promotion on and off. */
export async function promotionErrors(
  config: LayerConfig,
  seqLen: number,
  seed: number,
): Promise<{ on: number; off: number }> {
  const seqs = [{ qLen: 1, seqLen }];
  const on = await run(config, seqs, seed, { accumulationPromotion: true });
  const off = await run(config, seqs, seed, { accumulationPromotion: false });
  return { on: on.meanError, off: off.meanError };
}

for (const kvDtype of ["int8", "fp8_e4m3"] as const) {
  nativeTest(
    `fa3 native: at 32768 tokens (${kvDtype}) the error with accumulation promotion off is larger than with it on`,
    async () => {
      const config = layer({
        kvDtype,
        int8Scheme: kvDtype === "int8" ? "per_tensor" : undefined,
        blockSize: 16,
      });
      // No needle: softmax weight spread over every key, so the bf16
      // accumulator's l grows until whole blocks fall below half its step.
      const { on, off } = await promotionErrors(config, 32768, 7);
      console.log(
        `${kvDtype} 32768 tokens: mean |error| promotion on ${
          on.toExponential(3)
        }, off ${off.toExponential(3)}`,
      );
      assert.ok(on < LOW_PRECISION_KERNEL.atol / 10, `promotion on: ${on}`);
      assert.ok(off > 4 * on, `promotion off ${off} is not 4x on ${on}`);
    },
  );
}

nativeTest("fa3 native: bad settings are refused with the fix", async () => {
  const addon = loadNativeAddon();
  assert.throws(
    () =>
      createFa3NativeBackend(addon, FA3_CAPABILITIES, {
        promoteEveryBlocks: 9,
      }),
    /Backend fa3 on native: setting promoteEveryBlocks must be an integer from 1 to 4, got 9/,
  );
  assert.throws(
    () =>
      createFa3NativeBackend(addon, FA3_CAPABILITIES, {
        accumulationPromotion: "no" as never,
      }),
    /Backend fa3 on native: setting accumulationPromotion must be true or false, got "no"/,
  );
  await Promise.resolve();
});
