// The split-KV log-sum-exp merge (native/src/flashinfer/state.rs), base e:
// merged states equal one fp64 softmax over all the keys.

import assert from "node:assert/strict";
import { mulberry32 } from "../../core/prng.ts";
import { loadNativeAddon } from "../../native/mod.ts";
import { nativeTest } from "./native_test_support.ts";

/** (normalised mean, natural-log LSE) of logits x over values v (fp64). */
function state(x: number[], v: number[][]): { mean: number[]; lse: number } {
  const m = Math.max(...x);
  const w = x.map((xi) => Math.exp(xi - m));
  const sum = w.reduce((a, b) => a + b, 0);
  const mean = v[0].map((_, e) =>
    v.reduce((a, row, j) => a + w[j] * row[e], 0) / sum
  );
  return { mean, lse: m + Math.log(sum) };
}

nativeTest(
  "flashinferMergeStates() joins chunk states into the one-pass softmax (LSE base e)",
  () => {
    const rand = mulberry32(5);
    const d = 8;
    const x = Array.from({ length: 12 }, () => 6 * rand() - 3);
    const v = x.map(() => Array.from({ length: d }, () => rand() - 0.5));
    const whole = state(x, v);
    const cuts = [0, 5, 6, 12];
    const parts = cuts.slice(1).map((end, i) =>
      state(x.slice(cuts[i], end), v.slice(cuts[i], end))
    );
    const out = new Float32Array(d);
    const lse = loadNativeAddon().flashinferMergeStates(
      Float32Array.from(parts.flatMap((p) => p.mean)),
      Float32Array.from(parts.map((p) => p.lse)),
      out,
    );
    assert.ok(Math.abs(lse - whole.lse) < 1e-5, `lse ${lse} vs ${whole.lse}`);
    out.forEach((y, e) => assert.ok(Math.abs(y - whole.mean[e]) < 1e-5));
  },
);

nativeTest(
  "flashinferMergeStates() gives an empty state (lse -inf) no weight and never NaN",
  () => {
    const addon = loadNativeAddon();
    const out = new Float32Array(2);
    const lse = addon.flashinferMergeStates(
      Float32Array.of(1, 2, 99, 99),
      Float32Array.of(0.5, -Infinity),
      out,
    );
    assert.equal(lse, Math.fround(0.5));
    assert.deepEqual([...out], [1, 2]);
    const none = addon.flashinferMergeStates(
      Float32Array.of(1, 2),
      Float32Array.of(-Infinity),
      out,
    );
    assert.equal(none, -Infinity);
    assert.deepEqual([...out], [0, 0]);
    assert.throws(
      () =>
        addon.flashinferMergeStates(
          new Float32Array(3),
          new Float32Array(2),
          out,
        ),
      /v has 3 elements, expected 4/,
    );
  },
);
