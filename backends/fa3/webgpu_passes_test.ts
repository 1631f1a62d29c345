// fa3's attention runs in passes of keys (with promotion, as here: ~512
// keys each, in parallel, merged by merge.wgsl; split-KV), and promotes every
// promoteEveryBlocks blocks counted by page index. These cases put window
// starts, query rows and promotion groups on both sides of pass
// boundaries, against the fp64 oracle on the cache as read back.
import assert from "node:assert/strict";
import type { LayerConfig } from "../../core/layer.ts";
import { createFa3WebGpuBackend } from "./webgpu_backend.ts";
import { KEYS_PER_PASS } from "./webgpu_kernels.ts";
import {
  type DecodeOptions,
  layerOf,
  named,
  runDecode,
  SKIP_REASON,
} from "./webgpu_test_support.ts";

const ignore = SKIP_REASON !== undefined;
// Observed 2e-3..1.2e-2 (prefill rows see few keys, so P's rounding to
// 1/127 shows); conformance's bound for 8-bit compute is 0.1. A row that
// lost its carried state (or kept a stale one) is off by O(0.1..1).
const TOLERANCE = 0.03;
const P = KEYS_PER_PASS;

const CASES: [string, Partial<LayerConfig>, DecodeOptions, number][] = [
  [
    "a window starting in the first pass, the token in the third",
    { kind: "sliding_window", slidingWindow: P + 300 },
    { seqLen: 2 * P + 500 },
    2,
  ],
  [
    "a chunked prefill whose rows end on both sides of a pass boundary",
    { kvDtype: "int8" },
    { seqLen: P + 20, queryLen: 40 },
    2,
  ],
  [
    // int8: the pending partials are exact i32, so a group this long
    // loses nothing (fp8's 16-bit pending sum would, by design).
    "block 64 promoted every 32 blocks (one group per pass), head_dim 256",
    {
      kvDtype: "int8",
      blockSize: 64,
      headDim: 256,
      numQHeads: 4,
      numKvHeads: 4,
    },
    { seqLen: 2 * P + 70 },
    32,
  ],
  [
    "a window inside one pass of a long per_token_head sequence",
    {
      kvDtype: "int8",
      int8Scheme: "per_token_head",
      kind: "sliding_window",
      slidingWindow: 100,
      blockSize: 32,
    },
    { seqLen: P + 1040, queryLen: 3 }, // the last block alone in its group
    4,
  ],
];

for (const [label, overrides, options, every] of CASES) {
  Deno.test({
    name: named(`attend() across passes: ${label}`),
    ignore,
    async fn() {
      const backend = await createFa3WebGpuBackend({
        settings: { promoteEveryBlocks: every },
      });
      const run = await runDecode(backend, layerOf(overrides), {
        seed: 2,
        ...options,
      });
      backend.dispose();
      assert.ok(
        run.maxAbsError <= TOLERANCE,
        `max |diff| ${run.maxAbsError} > ${TOLERANCE}`,
      );
    },
  });
}
