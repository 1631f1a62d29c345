// Native xformers attention against the fp64 oracle on the dequantized
// cache: every dtype, decode / prefill / mixed batches, edge sequence
// lengths, GQA and MQA, head dims, block sizes, sliding windows. Every
// scenario shuffles block tables, poisons unowned slots and pre-fills the
// output with NaN (see native_test_util.ts).

import assert from "node:assert/strict";
import type { Int8Scheme, KvCacheDtype } from "../../core/dtype.ts";
import {
  layerFor,
  nativeTest,
  runScenario,
  type Scenario,
} from "./native_test_util.ts";

/**
 * Tolerances, as max absolute error against the oracle on the same
 * dequantized values (the kernel dequantizes bit-exactly, so only its fp32
 * arithmetic differs). With inputs of magnitude <= 1, a logit's fp32 sum of
 * D products errs by at most D * 2^-24 * Σ|q_d k_d| * scale (worst case
 * 2.4e-4 at D = 256; a random walk gives ~√D * 2^-24 ≈ 1e-6), softmax adds
 * the exp error (2^-23) and the fp32 sum of n weights (n * 2^-24 worst, ~√n
 * * 2^-24 typical), and out = Σ p v / l inherits those relative errors
 * times max|v| <= 1. Typical errors are ~1e-7 (measured: below 3e-7 here);
 * 1e-4 is 100x that and still far below what any real bug does (a wrong
 * key, mask or scale moves outputs by 1e-2 or more).
 *
 * 8- and 16-bit caches run the same arithmetic, plus scales folded out of
 * the sums (q·(c·s) as (q·s)·c, one more rounding per product) and int8
 * zero points subtracted after summing (zp·Σq cancels against q·c, terms up
 * to 128x larger than the result, so their rounding, ~2^-24 * |zp·Σq|, is
 * what grows). 2e-3 allows for that cancellation at |zp| near 128.
 */
const TOLERANCE = (dtype: KvCacheDtype) => dtype === "fp32" ? 1e-4 : 2e-3;

interface Case {
  readonly dtype: KvCacheDtype;
  readonly scheme?: Int8Scheme;
  readonly numQHeads?: number;
  readonly numKvHeads?: number;
  readonly headDim?: number;
  readonly blockSize?: number;
  readonly window?: number;
  readonly seqs: Scenario["seqs"];
}

function check(c: Case, seed: number): number {
  const layer = layerFor({
    dtype: c.dtype,
    int8Scheme: c.scheme,
    numQHeads: c.numQHeads ?? 8,
    numKvHeads: c.numKvHeads ?? 2,
    headDim: c.headDim ?? 72,
    blockSize: c.blockSize ?? 16,
    window: c.window,
  });
  const { maxError } = runScenario({ layer, seqs: c.seqs, seed });
  const tolerance = TOLERANCE(c.dtype);
  assert.ok(
    maxError <= tolerance,
    `max |out - oracle| = ${maxError.toExponential(2)} > ${tolerance}`,
  );
  return maxError;
}

const DTYPES: { dtype: KvCacheDtype; scheme?: Int8Scheme; label: string }[] = [
  { dtype: "fp32", label: "fp32" },
  { dtype: "fp16", label: "fp16" },
  { dtype: "bf16", label: "bf16" },
  { dtype: "fp8_e4m3", label: "fp8_e4m3" },
  { dtype: "fp8_e5m2", label: "fp8_e5m2" },
  {
    dtype: "int8",
    scheme: "per_tensor",
    label: "int8 per_tensor (zero points)",
  },
  { dtype: "int8", scheme: "per_token_head", label: "int8 per_token_head" },
];

// Decodes of length 1, blockSize and blockSize + 1, a whole-prompt prefill
// and a chunked prefill, in one batch.
const MIXED = [
  { len: 1, queryLen: 1 },
  { len: 16, queryLen: 1 },
  { len: 17, queryLen: 1 },
  { len: 17, queryLen: 17 },
  { len: 45, queryLen: 12 },
];

for (const [i, { dtype, scheme, label }] of DTYPES.entries()) {
  nativeTest(
    `xformers native: a mixed ${label} batch (decode lens 1, 16, 17; prefills) matches the fp64 oracle`,
    () => {
      check({ dtype, scheme, seqs: MIXED }, 100 + i);
    },
  );
  nativeTest(
    `xformers native: a pure ${label} decode batch and a pure ${label} prefill batch match the fp64 oracle`,
    () => {
      check(
        { dtype, scheme, seqs: MIXED.filter((s) => s.queryLen === 1) },
        200 + i,
      );
      check({
        dtype,
        scheme,
        seqs: [{ len: 33, queryLen: 33 }, { len: 20, queryLen: 5 }],
      }, 300 + i);
    },
  );
  for (const blockSize of [8, 32]) {
    nativeTest(
      `xformers native: ${label} with block size ${blockSize} matches the fp64 oracle`,
      () => {
        const seqs = [{ len: blockSize, queryLen: 1 }, {
          len: blockSize + 1,
          queryLen: 1,
        }, { len: 2 * blockSize + 3, queryLen: blockSize + 2 }];
        check({ dtype, scheme, blockSize, seqs }, 400 + blockSize + i);
      },
    );
  }
}

// Group sizes 1 (MHA), 4 and 8 (GQA) and MQA (one kv head), times head
// dims 64, 72 (a half vector on 16 lanes), 128 and 256; the dtype rotates.
const GROUPS = [
  { name: "MHA", numQHeads: 4, numKvHeads: 4 },
  { name: "GQA 4", numQHeads: 8, numKvHeads: 2 },
  { name: "GQA 8", numQHeads: 16, numKvHeads: 2 },
  { name: "MQA", numQHeads: 6, numKvHeads: 1 },
];
for (const [gi, group] of GROUPS.entries()) {
  for (const [di, headDim] of [64, 72, 128, 256].entries()) {
    const { dtype, scheme, label } = DTYPES[(gi * 4 + di) % DTYPES.length];
    nativeTest(
      `xformers native: ${group.name} (${group.numQHeads}/${group.numKvHeads} heads), head_dim ${headDim}, ${label} matches the fp64 oracle`,
      () => {
        check({
          dtype,
          scheme,
          headDim,
          ...group,
          seqs: [{ len: 23, queryLen: 1 }, { len: 30, queryLen: 9 }],
        }, 500 + gi * 4 + di);
      },
    );
  }
}

for (
  const { dtype, scheme, label } of [DTYPES[0], DTYPES[2], DTYPES[3], DTYPES[6]]
) {
  nativeTest(
    `xformers native: a ~3000-token ${label} context (decode plus a chunked prefill) matches the fp64 oracle`,
    () => {
      check({
        dtype,
        scheme,
        numQHeads: 4,
        numKvHeads: 1,
        headDim: 64,
        seqs: [{ len: 3001, queryLen: 1 }, { len: 2990, queryLen: 24 }],
      }, 600);
    },
  );
}

for (const window of [1, 5, 19, 1000]) {
  const than = window < 40 ? "smaller than" : "larger than";
  nativeTest(
    `xformers native: a sliding window of ${window} (${than} the sequences) matches the fp64 oracle`,
    () => {
      const seqs = [{ len: 40, queryLen: 1 }, { len: 37, queryLen: 37 }, {
        len: 39,
        queryLen: 7,
      }];
      check(
        { dtype: window % 2 ? "bf16" : "fp8_e5m2", window, seqs },
        700 + window,
      );
      check({
        dtype: "int8",
        scheme: "per_token_head",
        window,
        blockSize: 8,
        seqs,
      }, 800 + window);
    },
  );
}
