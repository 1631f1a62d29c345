// Fast checks of the accuracy benchmark's parts: the 8-bit compute
// emulation against the fp64 oracle, the effect of promotion at a longer
// context, and the kernels section end to end on a tiny layer.
import assert from "node:assert/strict";
import { decodeBf16, encodeBf16 } from "../core/bf16.ts";
import { codecFor } from "../core/codec.ts";
import { mulberry32 } from "../core/prng.ts";
import { referenceAttention } from "../core/reference_attention.ts";
import { estimateScales } from "../core/scales.ts";
import { createReferenceBackend } from "../backends/reference/mod.ts";
import { CACHE_VARIANTS, runKernels } from "./accuracy/kernels.ts";
import { kvDistribution, sampleKv, sampleQueries } from "./accuracy/kv_data.ts";
import {
  emulateLowPrecisionDecode,
  type EmulationOptions,
  roundToBits,
} from "./accuracy/low_precision_emulation.ts";
import { errorStats } from "./accuracy/metrics.ts";
import { needleTrial } from "./accuracy/needle_data.ts";
import { kernelsMarkdown } from "./accuracy/render.ts";

const LAYER = {
  index: 0,
  kind: "full",
  numQHeads: 4,
  numKvHeads: 2,
  headDim: 64,
  scale: 64 ** -0.5,
} as const;

/** A decode query over `len` tokens of structured K/V, and the fp64 oracle. */
function decodeCase(len: number, seed: number) {
  const dist = kvDistribution(mulberry32(seed), LAYER);
  const rand = mulberry32(seed + 1);
  const { keys, values } = sampleKv(dist, len, rand);
  const query = sampleQueries(dist, 1, LAYER.numQHeads, rand);
  const batch = {
    numSeqs: 1,
    numTokens: 1,
    queryStartLoc: Int32Array.of(0, 1),
    seqLens: Int32Array.of(len),
    tokenSeq: Int32Array.of(0),
    tokenPos: Int32Array.of(len - 1),
  };
  const oracle = (q: Float32Array, k: Float32Array, v: Float32Array) =>
    referenceAttention(LAYER, { batch, query: q, keys: [k], values: [v] }).out;
  return { keys, values, query, oracle };
}

function fp8(x: Float32Array, scale: number): Float32Array {
  const codec = codecFor("fp8_e4m3"), out = new Float32Array(x.length);
  const codes = codec.allocate(x.length);
  codec.encodeArray(x, codes, scale, 0);
  codec.decodeArray(codes, out, scale, 0);
  return out;
}

Deno.test("roundToBits() at 7 mantissa bits is bf16's round to nearest even", () => {
  assert.equal(roundToBits(1 + 2 ** -8, 7), 1);
  assert.equal(roundToBits(1 + 3 * 2 ** -8, 7), 1 + 2 ** -6);
  const rand = mulberry32(3);
  for (let i = 0; i < 1000; i++) {
    const x = Math.fround((rand() - 0.5) * 2 ** (40 * rand() - 20));
    assert.equal(roundToBits(x, 7), decodeBf16(encodeBf16(x)));
  }
  assert.equal(roundToBits(Math.PI, 23), Math.fround(Math.PI));
});

Deno.test("emulateLowPrecisionDecode() is the oracle on the quantized inputs when P and the accumulator keep fp32", () => {
  const { keys, values, query, oracle } = decodeCase(300, 1);
  const { kScale, vScale } = estimateScales(keys, values, "fp8_e4m3");
  const q = new Float32Array(query.length);
  for (let h = 0; h < LAYER.numQHeads; h++) {
    const row = query.subarray(h * 64, h * 64 + 64);
    const amax = Math.max(...row.map(Math.abs));
    q.set(fp8(row, Math.fround(amax / 448)), h * 64);
  }
  const want = oracle(q, fp8(keys, kScale), fp8(values, vScale));
  for (const promotion of [true, false]) {
    const got = emulateLowPrecisionDecode(LAYER, query, keys, values, {
      input: "fp8_e4m3",
      promotion,
      quantizeP: false,
      accumulatorBits: 23,
    });
    assert.ok(errorStats(got, want).maxAbs < 1e-5, `promotion ${promotion}`);
  }
});

Deno.test("emulateLowPrecisionDecode() with promotion on matches the fp64 oracle closely on a short context", () => {
  const { keys, values, query, oracle } = decodeCase(256, 2);
  const want = oracle(query, keys, values);
  for (const input of ["fp8_e4m3", "int8"] as const) {
    const got = emulateLowPrecisionDecode(LAYER, query, keys, values, {
      input,
      promotion: true,
    });
    const err = errorStats(got, want);
    assert.ok(
      err.maxAbs < 0.1 && err.rms < 0.03,
      `${input}: ${JSON.stringify(err)}`,
    );
  }
});

Deno.test("emulateLowPrecisionDecode() with promotion off is worse than on at 4096 tokens", () => {
  const layer = { ...LAYER, headDim: 64 };
  const dist = kvDistribution(mulberry32(5), layer);
  const trial = needleTrial(layer, dist, 4096, mulberry32(6), {
    marginMean: 2.5,
    candidates: 8,
  });
  const err = (opts: EmulationOptions) =>
    errorStats(
      emulateLowPrecisionDecode(
        layer,
        trial.query,
        trial.keys,
        trial.values,
        opts,
      ),
      trial.oracle,
    ).rms;
  for (const quantizeP of [false, true]) {
    const on = err({ input: "fp8_e4m3", promotion: true, quantizeP });
    const off = err({ input: "fp8_e4m3", promotion: false, quantizeP });
    assert.ok(
      off > (quantizeP ? 1.2 : 2) * on,
      `P8 ${quantizeP}: off ${off}, on ${on}`,
    );
  }
});

Deno.test("runKernels() measures every cache variant on a tiny layer through the reference backend", async () => {
  const backend = createReferenceBackend();
  const rows = await runKernels({
    targets: [{ label: "reference/reference", backend }],
    lengths: [40],
    seed: 1,
    headDim: 16,
    numQHeads: 4,
    numKvHeads: 2,
    qLen: 2,
    calibrationTokens: 64,
  });
  const expected = CACHE_VARIANTS.reduce((a, v) => a + v.sources.length, 0);
  assert.equal(rows.length, expected);
  for (const r of rows) {
    assert.ok(
      r.kernel!.maxAbs < 1e-5,
      `${r.variant} ${r.source}: kernel error`,
    );
    const bound = r.variant === "fp32" ? 1e-5 : 0.5;
    assert.ok(
      r.quant!.maxAbs < bound,
      `${r.variant} ${r.source}: ${r.quant!.maxAbs}`,
    );
  }
  assert.ok(
    rows.some((r) => r.quant!.rms > 1e-3),
    "8-bit variants lose something",
  );
  const md = kernelsMarkdown(rows, [], "tiny");
  assert.equal(
    md.split("\n").filter((l) => l.startsWith("| reference")).length,
    expected,
  );
  backend.dispose();
});
