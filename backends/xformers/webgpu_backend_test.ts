// The xformers WebGPU target against core's codecs (cache writes, bit for
// bit) and the fp64 oracle (attention on the cache as read back), never
// against another backend. Without an adapter every test is ignored and its
// name says why.
//
// Tolerances, f32 kernels against the fp64 oracle on the same dequantized
// cache (so quantization error cancels): the output is a convex combination
// of V rows, |v| <= 1 here. A logit q.k * scale over d <= 256 terms of
// |q|, |k| <= 1 carries at most d * 2^-24 * scale ~ 1e-6 of rounding, which
// moves each weight by about as much relatively; the weighted sum over n <=
// 300 keys adds n * 2^-24 ~ 2e-5 at worst (sqrt(n) typically). 1e-4 bounds
// fp32 caches with room for exp() (a few ULP in WGSL). For 16- and 8-bit
// caches the math is the same f32 math, but dequantized values reach |v| ~
// 1.1 (int8 (127 - zp) * scale) and wider dynamic range in the logits, so
// the bound is the brief's 2e-3; observed errors are ~1e-7 either way.
import assert from "node:assert/strict";
import { type CodeArray, codecFor } from "../../core/codec.ts";
import { KV_CACHE_DTYPES } from "../../core/dtype.ts";
import { quantizeInt8PerTokenHead } from "../../core/int8.ts";
import type { LayerConfig } from "../../core/layer.ts";
import { mulberry32 } from "../../core/prng.ts";
import {
  layerOf,
  named,
  randomArray,
  runScenario,
  scalesFor,
  sharedBackend,
  SKIP_REASON,
} from "./webgpu_test_support.ts";

const ignore = SKIP_REASON !== undefined;
const tolerance = (c: LayerConfig) => c.kvDtype === "fp32" ? 1e-4 : 2e-3;

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

/** Values that hit every rounding path: ties, saturation, subnormals, specials. */
function hardValues(config: LayerConfig, n: number, seed: number) {
  const rand = mulberry32(seed);
  const scale = scalesFor(config).kScale;
  const codec = codecFor(config.kvDtype);
  const f32 = new Float32Array(1);
  const bits = new Uint32Array(f32.buffer);
  const specials = [NaN, Infinity, -Infinity, 0, -0, 1e-45, -1e-40, 3.4e38];
  return Float32Array.from({ length: n }, (_, i) => {
    if (i < specials.length) return specials[i];
    const kind = i % 4;
    if (kind === 0) return (rand() * 2 - 1) * 10 ** (rand() * 12 - 9);
    if (kind === 1) return (rand() * 2 - 1) * 600 * scale;
    // A midpoint between two neighbouring codes, times the scale, then
    // nudged by -1, 0 or +1 ULP: x / scale lands on or next to a tie.
    const c = Math.floor(rand() * 120);
    const a = codec.bytes === 1 && config.kvDtype !== "int8"
      ? codec.decode(c, 1, 0)
      : c;
    const b = codec.bytes === 1 && config.kvDtype !== "int8"
      ? codec.decode(c + 1, 1, 0)
      : c + 1;
    f32[0] = ((a + b) / 2) * scale * (rand() < 0.5 ? -1 : 1);
    bits[0] += Math.floor(rand() * 3) - 1;
    return f32[0];
  });
}

function bitsOf(codes: CodeArray): Uint8Array {
  return new Uint8Array(codes.buffer, codes.byteOffset, codes.byteLength);
}

for (const { label, config: variant } of VARIANTS) {
  Deno.test({
    name: named(
      `write() stores ${label} codes bit-exact with core's codecs and skips padding slots`,
    ),
    ignore,
    fn: async () => {
      const b = await sharedBackend();
      const config = layerOf({ ...variant, numKvHeads: 2, headDim: 72 });
      const scales = scalesFor(config);
      const cache = await b.createCache(config, { numBlocks: 6, scales });
      const row = 2 * 72;
      const slotMapping = Int32Array.of(77, -1, 3, 40, -1, 95, 16, 17, 0);
      const n = slotMapping.length;
      const keys = hardValues(config, n * row, 1);
      const values = hardValues(config, n * row, 2).reverse();
      b.write(cache, { keys, values, slotMapping });
      const kept = [...slotMapping.keys()].filter((t) => slotMapping[t] >= 0);
      const pick = (src: Float32Array) =>
        Float32Array.from(
          kept.flatMap((t) => [...src.subarray(t * row, (t + 1) * row)]),
        );
      const got = await b.readCodes(
        cache,
        Int32Array.from(kept.map((t) => slotMapping[t])),
      );
      for (
        const [name, src, codes, s, zp] of [
          ["keys", pick(keys), got.keys, scales.kScale, scales.kZeroPoint],
          [
            "values",
            pick(values),
            got.values,
            scales.vScale,
            scales.vZeroPoint,
          ],
        ] as const
      ) {
        let want: CodeArray;
        if (config.int8Scheme === "per_token_head") {
          const q = quantizeInt8PerTokenHead(src, kept.length, 2, 72);
          want = q.codes;
          const gotScales = name === "keys" ? got.keyScales : got.valueScales;
          assert.deepEqual(
            bitsOf(gotScales!),
            bitsOf(q.scales),
            `${name} scales`,
          );
        } else {
          want = codecFor(config.kvDtype).allocate(src.length);
          codecFor(config.kvDtype).encodeArray(src, want, s, zp);
        }
        const a = bitsOf(codes), e = bitsOf(want);
        const bad = a.findIndex((x, i) => x !== e[i]);
        assert.equal(
          bad,
          -1,
          `${name}: byte ${bad} is ${a[bad]}, core's codec gives ${
            e[bad]
          } (input ${src[Math.floor(bad / codecFor(config.kvDtype).bytes)]})`,
        );
      }
      // Slots no token maps to were never written: still zero.
      const untouched = await b.readCodes(cache, Int32Array.of(1, 94));
      assert.ok(bitsOf(untouched.keys).every((x) => x === 0));
      b.disposeCache(cache);
    },
  });
}

for (const { label, config: variant } of VARIANTS) {
  Deno.test({
    name: named(
      `attend() on a ${label} cache matches the fp64 oracle for a mixed batch of lengths 1, 16, 17, 40 and 300`,
    ),
    ignore,
    fn: async () => {
      const config = layerOf({ ...variant, headDim: 64 });
      const r = await runScenario(config, {
        // decode at 1, blockSize and a few hundred; a whole 17-token prefill;
        // the last 12 tokens of a 40-token sequence (chunked prefill).
        seqLens: [1, 16, 17, 300, 40],
        queryLens: [1, 1, 17, 1, 12],
      });
      assert.ok(
        r.maxAbsError <= tolerance(config),
        r.report(tolerance(config)),
      );
    },
  });
}

const SHAPES = [
  { numQHeads: 4, numKvHeads: 4, headDim: 64, kvDtype: "bf16" },
  { numQHeads: 8, numKvHeads: 2, headDim: 72, kvDtype: "fp8_e4m3" },
  { numQHeads: 16, numKvHeads: 2, headDim: 128, kvDtype: "fp16" },
  { numQHeads: 8, numKvHeads: 1, headDim: 256, kvDtype: "fp8_e5m2" },
] as const;

for (const shape of SHAPES) {
  const group = shape.numQHeads / shape.numKvHeads;
  const kind = shape.numKvHeads === 1 ? "MQA" : `GQA group ${group}`;
  Deno.test({
    name: named(
      `attend() serves ${kind} at head_dim ${shape.headDim} (${shape.kvDtype}) within tolerance of the oracle`,
    ),
    ignore,
    fn: async () => {
      const config = layerOf({ ...shape, blockSize: 8 });
      const r = await runScenario(config, {
        seqLens: [33, 9, 1],
        queryLens: [1, 9, 1],
        seed: shape.headDim,
      });
      assert.ok(
        r.maxAbsError <= tolerance(config),
        r.report(tolerance(config)),
      );
    },
  });
}

for (const window of [1, 8, 16, 500]) {
  Deno.test({
    name: named(
      `attend() with a sliding window of ${window} ${
        window > 300 ? "larger" : "smaller"
      } than the sequence matches the oracle in decode and prefill`,
    ),
    ignore,
    fn: async () => {
      const config = layerOf({
        kind: "sliding_window",
        slidingWindow: window,
        kvDtype: "fp8_e4m3",
        blockSize: 32,
      });
      const r = await runScenario(config, {
        seqLens: [300, 17, 1, 45],
        queryLens: [1, 17, 1, 20],
        seed: window,
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
    "attend() matches the oracle on decode-only and prefill-only batches",
  ),
  ignore,
  fn: async () => {
    const config = layerOf({ kvDtype: "int8", blockSize: 8 });
    for (
      const spec of [
        { seqLens: [5, 8, 9, 64], queryLens: [1, 1, 1, 1] },
        { seqLens: [9, 64], queryLens: [9, 30] },
      ]
    ) {
      const r = await runScenario(config, spec);
      assert.ok(
        r.maxAbsError <= tolerance(config),
        r.report(tolerance(config)),
      );
    }
  },
});

Deno.test({
  name: named(
    "copyBlocks() copies codes and per-token scales in pair order",
  ),
  ignore,
  fn: async () => {
    const b = await sharedBackend();
    const config = layerOf({
      kvDtype: "int8",
      int8Scheme: "per_token_head",
      blockSize: 8,
    });
    const cache = await b.createCache(config, {
      numBlocks: 4,
      scales: scalesFor(config),
    });
    const rand = mulberry32(3);
    const row = 2 * 64;
    const slots = Int32Array.from({ length: 16 }, (_, i) => i);
    b.write(cache, {
      keys: randomArray(rand, 16 * row),
      values: randomArray(rand, 16 * row),
      slotMapping: slots,
    });
    // Block 2 receives block 0, then block 3 receives the new block 2.
    b.copyBlocks(cache, Int32Array.of(0, 2, 2, 3));
    const src = await b.readCodes(cache, slots.subarray(0, 8));
    for (const block of [2, 3]) {
      const dst = await b.readCodes(
        cache,
        slots.subarray(0, 8).map((s) => s + block * 8),
      );
      assert.deepEqual(dst, src, `block ${block}`);
    }
    b.disposeCache(cache);
  },
});
