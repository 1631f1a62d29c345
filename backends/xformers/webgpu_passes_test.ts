// Long contexts on the xformers WebGPU target: attention runs as several
// dispatches that carry the online-softmax state (m, l, acc) between them
// (see DECODE_KEYS_PER_PASS for why), checked against the fp64 oracle.
// Tolerances as derived in webgpu_backend_test.ts.
import assert from "node:assert/strict";
import type { LayerConfig } from "../../core/layer.ts";
import {
  layerOf,
  named,
  runScenario,
  SKIP_REASON,
} from "./webgpu_test_support.ts";

const ignore = SKIP_REASON !== undefined;
const tolerance = (c: LayerConfig) => c.kvDtype === "fp32" ? 1e-4 : 2e-3;

for (
  const [label, extra] of [
    ["full attention", {}],
    ["a sliding window of 50", { kind: "sliding_window", slidingWindow: 50 }],
  ] as const
) {
  Deno.test({
    name: named(
      `attend() carries the softmax state across short key passes with ${label}`,
    ),
    ignore,
    fn: async () => {
      // 64 and 16 keys per pass: every sequence but the shortest spans
      // several passes, and pass boundaries fall inside blocks and windows.
      const config = layerOf({
        ...extra,
        kvDtype: "int8",
        int8Scheme: "per_token_head",
        blockSize: 8,
      });
      const r = await runScenario(config, {
        seqLens: [300, 17, 1, 45, 130],
        queryLens: [1, 17, 1, 20, 9],
        backendOptions: { keysPerPass: { decode: 64, prefill: 16 } },
      });
      assert.ok(
        r.maxAbsError <= tolerance(config),
        r.report(tolerance(config)),
      );
    },
  });
}

Deno.test({
  name: named(
    "attend() matches the oracle for a 4500-token decode and a 1100-token context prefill at the default pass sizes",
  ),
  ignore,
  fn: async () => {
    const config = layerOf({
      kvDtype: "fp8_e4m3",
      numQHeads: 2,
      numKvHeads: 1,
    });
    const r = await runScenario(config, {
      seqLens: [4500, 1100],
      queryLens: [1, 8],
    });
    assert.ok(r.maxAbsError <= tolerance(config), r.report(tolerance(config)));
  },
});
