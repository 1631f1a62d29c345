import assert from "node:assert/strict";
import { planBatch } from "../../core/batch.ts";
import { type CodeArray, codecFor } from "../../core/codec.ts";
import { KV_CACHE_DTYPES } from "../../core/dtype.ts";
import { quantizeInt8PerTokenHead } from "../../core/int8.ts";
import { mulberry32 } from "../../core/prng.ts";
import { loadNativeAddon } from "../../native/mod.ts";
import {
  backend,
  decodeWithCore,
  layerFor,
  nativeTest,
  scalesFor,
} from "./native_test_util.ts";

// Values that reach every branch of every encoder: zeros of both signs,
// NaN, infinities, ties, subnormals, overflow, the int8 clamp.
const SPECIALS = [
  0,
  -0,
  NaN,
  Infinity,
  -Infinity,
  1e-30,
  -3e-6,
  2 ** -17,
  65520,
  1e6,
  -1e9,
  0.5,
  1.5,
  -2.5,
  448,
  464,
  57344,
  61440,
  3.4e38,
  0.0625,
  1 / 3,
];

function inputs(seed: number, n: number): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from(
    { length: n },
    (_, i) =>
      i < SPECIALS.length
        ? SPECIALS[i]
        : (rand() * 2 - 1) * 4 ** (rand() * 8 - 4),
  );
}

/** Codes as integers; float32 as bits, every NaN as one (core leaves NaN payloads open). */
function bits(a: CodeArray): number[] {
  if (!(a instanceof Float32Array)) return [...a];
  return [...new Uint32Array(a.buffer, a.byteOffset, a.length)].map((u, i) =>
    Number.isNaN(a[i]) ? 0x7fc00000 : u
  );
}

const SCHEMES = [
  ...KV_CACHE_DTYPES.map((dtype) => ({ dtype, pth: false })),
  { dtype: "int8" as const, pth: true },
];

for (const { dtype, pth } of SCHEMES) {
  const label = pth ? "int8 per_token_head" : dtype;
  nativeTest(
    `xformers native: write() stores ${label} codes bit-exact with core's encoders, in the documented layout`,
    () => {
      const layer = layerFor({
        dtype,
        int8Scheme: pth ? "per_token_head" : undefined,
        numQHeads: 4,
        numKvHeads: 2,
        headDim: 24,
        blockSize: 8,
      });
      const be = backend();
      const scales = pth ? scalesFor("fp32") : scalesFor(dtype);
      const cache = be.createCache(layer, { numBlocks: 4, scales });
      const slots = Int32Array.of(13, -1, 0, 31, 8, 7);
      const row = 2 * 24;
      const keys = inputs(1, slots.length * row),
        values = inputs(2, slots.length * row).reverse();
      be.write(cache, { keys, values, slotMapping: slots });
      const codec = codecFor(dtype);
      const { native } = cache;
      slots.forEach((slot, t) => {
        if (slot === -1) return;
        const [block, offset] = [slot >> 3, slot & 7];
        for (let h = 0; h < 2; h++) {
          const src = {
            k: keys.subarray((t * 2 + h) * 24, (t * 2 + h + 1) * 24),
            v: values.subarray((t * 2 + h) * 24, (t * 2 + h + 1) * 24),
          };
          const tileRow = (block * 2 + h) * 8;
          const gotK = codec.allocate(24), gotV = codec.allocate(24);
          for (let e = 0; e < 24; e++) {
            gotK[e] = native.keys[tileRow * 24 + e * 8 + offset]; // K tile transposed
            gotV[e] = native.values[(tileRow + offset) * 24 + e];
          }
          const wantK = codec.allocate(24), wantV = codec.allocate(24);
          if (pth) {
            const k = quantizeInt8PerTokenHead(src.k, 1, 1, 24);
            const v = quantizeInt8PerTokenHead(src.v, 1, 1, 24);
            wantK.set(k.codes), wantV.set(v.codes);
            assert.equal(
              native.keyScales![tileRow + offset],
              k.scales[0],
              `K scale of slot ${slot} head ${h}`,
            );
            assert.equal(
              native.valueScales![tileRow + offset],
              v.scales[0],
              `V scale of slot ${slot} head ${h}`,
            );
          } else {
            codec.encodeArray(src.k, wantK, scales.kScale, scales.kZeroPoint);
            codec.encodeArray(src.v, wantV, scales.vScale, scales.vZeroPoint);
          }
          assert.deepEqual(
            bits(gotK),
            bits(wantK),
            `K codes of slot ${slot} head ${h}`,
          );
          assert.deepEqual(
            bits(gotV),
            bits(wantV),
            `V codes of slot ${slot} head ${h}`,
          );
        }
      });
      // Slots not in the mapping (and the -1 padding row) keep zero codes.
      const written = new Set(slots);
      for (let slot = 0; slot < 32; slot++) {
        if (written.has(slot)) continue;
        const [block, offset] = [slot >> 3, slot & 7];
        for (let h = 0; h < 2; h++) {
          const tileRow = (block * 2 + h) * 8;
          for (let e = 0; e < 24; e++) {
            assert.equal(native.keys[tileRow * 24 + e * 8 + offset], 0);
            assert.equal(native.values[(tileRow + offset) * 24 + e], 0);
          }
          assert.equal(native.keyScales?.[tileRow + offset] ?? 0, 0);
        }
      }
    },
  );

  nativeTest(
    `xformers native: readCache() of a ${label} cache equals core's decoders on its codes, bit for bit`,
    () => {
      const layer = layerFor({
        dtype,
        int8Scheme: pth ? "per_token_head" : undefined,
        numQHeads: 2,
        numKvHeads: 1,
        headDim: 40,
        blockSize: 16,
      });
      const be = backend();
      const cache = be.createCache(layer, {
        numBlocks: 3,
        scales: pth ? scalesFor("fp32") : scalesFor(dtype),
      });
      const slots = Int32Array.from({ length: 40 }, (_, i) => (i * 7) % 48);
      be.write(cache, {
        keys: inputs(3, 40 * 40),
        values: inputs(4, 40 * 40),
        slotMapping: slots,
      });
      const got = be.readCache(cache, slots);
      const want = decodeWithCore(cache, slots);
      assert.deepEqual(bits(got.keys), bits(want.keys));
      assert.deepEqual(bits(got.values), bits(want.values));
    },
  );
}

nativeTest(
  "xformers native: copyBlocks() copies codes and per-token scales of every head",
  () => {
    const layer = layerFor({
      dtype: "int8",
      int8Scheme: "per_token_head",
      numQHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      blockSize: 8,
    });
    const be = backend();
    const cache = be.createCache(layer, {
      numBlocks: 3,
      scales: scalesFor("fp32"),
    });
    const slots = Int32Array.from({ length: 8 }, (_, i) => i);
    be.write(cache, {
      keys: inputs(5, 8 * 32),
      values: inputs(6, 8 * 32),
      slotMapping: slots,
    });
    be.copyBlocks(cache, Int32Array.of(0, 2));
    assert.deepEqual(
      be.readCache(cache, slots.map((s) => s + 16)),
      be.readCache(cache, slots),
    );
  },
);

nativeTest(
  "xformers native: cacheBytesPerBlock() is exactly what createCache() allocates per block",
  () => {
    const be = backend();
    for (const { dtype, pth } of SCHEMES) {
      const layer = layerFor({
        dtype,
        int8Scheme: pth ? "per_token_head" : undefined,
        numQHeads: 8,
        numKvHeads: 2,
        headDim: 72,
        blockSize: 32,
      });
      const { native } = be.createCache(layer, {
        numBlocks: 5,
        scales: scalesFor(dtype),
      });
      const bytes = [
        native.keys,
        native.values,
        native.keyScales,
        native.valueScales,
      ]
        .reduce((sum, a) => sum + (a?.byteLength ?? 0), 0);
      assert.equal(be.cacheBytesPerBlock(layer) * 5, bytes, dtype);
    }
  },
);

nativeTest(
  "xformers native: bad layers, slots, lengths, pairs and foreign caches are clear errors",
  () => {
    const be = backend();
    const layer = layerFor({
      dtype: "bf16",
      numQHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      blockSize: 8,
    });
    assert.throws(
      () =>
        be.createCache({ ...layer, headDim: 20 }, {
          numBlocks: 2,
          scales: scalesFor("bf16"),
        }),
      /Backend xformers cannot serve layer 0: head_dim 20 is not supported/,
    );
    assert.throws(
      () =>
        be.createCache({ ...layer, softCap: 30 }, {
          numBlocks: 2,
          scales: scalesFor("bf16"),
        }),
      /logit soft-cap \(30\) is not supported/,
    );
    assert.throws(
      () => be.createCache(layer, { numBlocks: 0, scales: scalesFor("bf16") }),
      /numBlocks must be a positive integer, got 0/,
    );
    assert.throws(
      () =>
        be.createCache({ ...layer, kvDtype: "fp8_e4m3" }, {
          numBlocks: 1,
          scales: { ...scalesFor("fp8_e4m3"), kScale: -1 },
        }),
      /Invalid fp8_e4m3 scale -1/,
    );
    const cache = be.createCache(layer, {
      numBlocks: 2,
      scales: scalesFor("bf16"),
    });
    const row = new Float32Array(32);
    assert.throws(
      () =>
        be.write(cache, {
          keys: row,
          values: row,
          slotMapping: Int32Array.of(16),
        }),
      /slotMapping\[0\] is 16, outside the cache's 16 slots \(2 blocks of 8\): use -1 for padding/,
    );
    assert.throws(
      () =>
        be.write(cache, {
          keys: row,
          values: row,
          slotMapping: Int32Array.of(0, 1),
        }),
      /keys has 32 elements, expected 64/,
    );
    assert.throws(
      () => be.copyBlocks(cache, Int32Array.of(0, 2)),
      /Block 2 in pairs\[0\.\.1\] is outside 0\.\.1/,
    );
    assert.throws(
      () => be.readCache(cache, Int32Array.of(-1)),
      /slots\[0\] is -1, outside the cache's 16 slots/,
    );
    const plan = planBatch({
      queryStartLoc: Int32Array.of(0, 1),
      seqLens: Int32Array.of(9),
      blockTables: Int32Array.of(1, 5),
      maxBlocksPerSeq: 2,
      blockSize: 8,
    });
    const q = new Float32Array(64);
    assert.throws(
      () => be.attend(cache, plan, { query: q, out: new Float32Array(64) }),
      /blockTables\[0\]\[1\] is 5, outside the cache's 2 blocks \(0\.\.1\)/,
    );
    assert.throws(
      () => be.attend(cache, plan, { query: q, out: new Float32Array(8) }),
      /out has 8 elements, expected 64/,
    );
    const other = planBatch({
      ...plan,
      blockSize: 16,
      blockTables: Int32Array.of(0, 1),
    });
    assert.throws(
      () => be.attend(cache, other, { query: q, out: q.slice() }),
      /planned for block size 16 but layer 0's cache uses 8/,
    );
    assert.throws(
      () =>
        be.write({ config: layer, numBlocks: 2 } as never, {
          keys: row,
          values: row,
          slotMapping: Int32Array.of(0),
        }),
      /given a cache it did not create/,
    );
    be.dispose();
    assert.throws(
      () => be.readCache(cache, Int32Array.of(0)),
      /Backend xformers was disposed/,
    );
  },
);

nativeTest(
  "xformers native: the addon itself refuses out-of-range batches and overlapping buffers",
  () => {
    // Direct calls, past the backend's own checks: memory safety must not
    // depend on them.
    const addon = loadNativeAddon();
    const layer = layerFor({
      dtype: "fp32",
      numQHeads: 2,
      numKvHeads: 1,
      headDim: 8,
      blockSize: 8,
    });
    const cache = backend().createCache(layer, {
      numBlocks: 1,
      scales: scalesFor("fp32"),
    });
    const batch = {
      queryStartLoc: Int32Array.of(0, 1),
      seqLens: Int32Array.of(9),
      blockTables: Int32Array.of(0, 3),
      maxBlocksPerSeq: 2,
    };
    const q = new Float32Array(16);
    const row = new Float32Array(8);
    assert.throws(
      () =>
        addon.xformersAttend(
          cache.native,
          batch,
          q,
          new Float32Array(16),
          null,
        ),
      /blockTables\[0\]\[1\] = 3 is outside the cache's blocks 0\.\.0/,
    );
    const short = { ...batch, seqLens: Int32Array.of(4) };
    assert.throws(
      () => addon.xformersAttend(cache.native, short, q, q.subarray(0), null),
      /out must not share memory with query/,
    );
    assert.throws(
      () =>
        addon.xformersAttend(
          { ...cache.native, blockSize: 12 },
          short,
          q,
          new Float32Array(16),
          null,
        ),
      /blockSize must be 8, 16 or 32, got 12/,
    );
    assert.throws(
      () => addon.xformersWrite(cache.native, row, row, Int32Array.of(-2)),
      /slotMapping\[0\] is -2/,
    );
    assert.throws(
      () =>
        addon.xformersWrite(
          cache.native,
          (cache.native.keys as Float32Array).subarray(0, 8),
          row,
          Int32Array.of(0),
        ),
      /cache\.keys must not share memory with keys/,
    );
  },
);
