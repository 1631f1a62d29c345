// The flashinfer WebGPU attention against the fp64 oracle only, run on the
// cache as read back (so quantization error cancels and what is left is the
// kernel's): every KV dtype; decode, prefill and mixed batches; lengths 1,
// one page, one page + 1, a few hundred and a ~4.5k decode whose split-KV
// chunks are merged; GQA 1/4/8 and MQA; head dims 64/128/256; windows
// smaller and larger than the sequence; soft-cap. Without an adapter every
// test is ignored and its name says why.
//
// Tolerance: fp32 caches 1e-4 (fp32 accumulation over <= 5k keys of |v| <=
// 1, plus exp() a few ULP off), others 2e-3, conformance's kernel bound
// (the kernels compute in fp32 either way; observed errors are ~1e-7).
import assert from "node:assert/strict";
import { KV_CACHE_DTYPES } from "../../core/dtype.ts";
import type { LayerConfig } from "../../core/layer.ts";
import {
  layerOf,
  named,
  runScenario,
  type ScenarioSpec,
  SKIP_REASON,
} from "./webgpu_test_support.ts";

const ignore = SKIP_REASON !== undefined;
const tolerance = (c: LayerConfig) => c.kvDtype === "fp32" ? 1e-4 : 2e-3;

async function check(config: LayerConfig, spec: ScenarioSpec) {
  const r = await runScenario(config, spec);
  assert.ok(r.maxAbsError <= tolerance(config), r.report(tolerance(config)));
}

/** Every dtype, int8 as per-tensor with a zero point and per token-head. */
const VARIANTS: { label: string; config: Partial<LayerConfig> }[] = [
  ...KV_CACHE_DTYPES.map((kvDtype) => ({
    label: kvDtype === "int8" ? "int8 per_tensor" : kvDtype,
    config: { kvDtype },
  })),
  {
    label: "int8 per_token_head",
    config: { kvDtype: "int8", int8Scheme: "per_token_head" },
  },
];

// Decode lens 1, page, page + 1, 300; prefill fresh and chunked; mixed.
const MIXED: ScenarioSpec = {
  seqLens: [1, 16, 17, 300, 20, 45],
  queryLens: [1, 1, 1, 1, 20, 9],
};

for (const { label, config } of VARIANTS) {
  Deno.test({
    name: named(
      `attend() matches the oracle on a mixed batch of lengths 1, 16, 17, 300 and prefills (${label}, GQA 4)`,
    ),
    ignore,
    fn: () => check(layerOf({ ...config, numQHeads: 8, numKvHeads: 2 }), MIXED),
  });
}

const HEADS = { "1": [4, 4], "4": [8, 2], "8": [16, 2], mqa: [8, 1] } as const;
for (const [gqa, [numQHeads, numKvHeads]] of Object.entries(HEADS)) {
  for (const headDim of [64, 128, 256]) {
    Deno.test({
      name: named(
        `attend() fuses GQA ${gqa} at head_dim ${headDim} (fp8_e5m2, block 32, decode and prefill)`,
      ),
      ignore,
      fn: () =>
        check(
          layerOf({
            kvDtype: "fp8_e5m2",
            numQHeads,
            numKvHeads,
            headDim,
            blockSize: 32,
          }),
          { seqLens: [33, 70, 12], queryLens: [1, 1, 12] },
        ),
    });
  }
}

for (const [window, cap] of [[7, undefined], [5000, undefined], [40, 2]]) {
  Deno.test({
    name: named(
      `attend() applies a sliding window of ${window}${
        cap ? ` with soft-cap ${cap}` : ""
      } (bf16, block 64)`,
    ),
    ignore,
    fn: () =>
      check(
        layerOf({
          kvDtype: "bf16",
          blockSize: 64,
          kind: "sliding_window",
          slidingWindow: window,
          ...(cap ? { softCap: cap } : {}),
        }),
        { seqLens: [200, 129, 90], queryLens: [1, 1, 30] },
      ),
  });
}

Deno.test({
  name: named("attend() applies the soft-cap on a full layer (fp8_e4m3)"),
  ignore,
  fn: () => check(layerOf({ kvDtype: "fp8_e4m3", softCap: 1.5 }), MIXED),
});

Deno.test({
  name: named(
    "attend() merges ~36 split-KV chunks of a 4500-token decode (fp8_e4m3, GQA 8, head_dim 128)",
  ),
  ignore,
  fn: () =>
    check(
      layerOf({
        kvDtype: "fp8_e4m3",
        numQHeads: 16,
        numKvHeads: 2,
        headDim: 128,
      }),
      { seqLens: [4500, 1], queryLens: [1, 1] },
    ),
});

Deno.test({
  name: named(
    "attend() merges correctly when whole chunks are masked by the window (int8 per_token_head)",
  ),
  ignore,
  // 16-key chunks over 300 keys with a window of 20: all but the last two
  // chunks are empty (l = 0) and must contribute nothing to the merge.
  fn: () =>
    check(
      layerOf({
        kvDtype: "int8",
        int8Scheme: "per_token_head",
        kind: "sliding_window",
        slidingWindow: 20,
      }),
      {
        seqLens: [300, 33],
        queryLens: [1, 1],
        backendOptions: { maxChunkKeys: 16 },
      },
    ),
});

Deno.test({
  name: named(
    "attend() carries prefill state across passes (fp16, 64 keys per pass)",
  ),
  ignore,
  fn: () =>
    check(layerOf({ kvDtype: "fp16", numQHeads: 8, numKvHeads: 1 }), {
      seqLens: [150, 40],
      queryLens: [30, 40],
      backendOptions: { prefillKeysPerPass: 64 },
    }),
});
