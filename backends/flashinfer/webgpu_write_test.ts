// The flashinfer cache write (webgpu/wgsl/hnd_cache_write.wgsl) against core's codecs,
// bit for bit, for every KV dtype of the layout, including values that hit
// every rounding path (ties, saturation, subnormals, inf, NaN); padding
// slots (-1) are skipped; copyBlocks copies codes and per-token-head
// scales. Without an adapter every test is ignored and its name says why.
import assert from "node:assert/strict";
import { codecFor } from "../../core/codec.ts";
import { KV_CACHE_DTYPES } from "../../core/dtype.ts";
import { quantizeInt8PerTokenHead } from "../../core/int8.ts";
import type { LayerConfig } from "../../core/layer.ts";
import { mulberry32 } from "../../core/prng.ts";
import {
  layerOf,
  named,
  scalesFor,
  sharedBackend,
  SKIP_REASON,
} from "./webgpu_test_support.ts";

const ignore = SKIP_REASON !== undefined;

/** Values across the dtype's range: specials, ties, saturation, tiny ones. */
function hardValues(config: LayerConfig, n: number, seed: number) {
  const rand = mulberry32(seed);
  const scale = scalesFor(config).kScale;
  const specials = [NaN, Infinity, -Infinity, 0, -0, 1e-45, -1e-40, 3.4e38];
  return Float32Array.from({ length: n }, (_, i) => {
    if (i < specials.length) return specials[i];
    if (i % 3 === 0) return (rand() * 2 - 1) * 10 ** (rand() * 12 - 9);
    if (i % 3 === 1) return (rand() * 2 - 1) * 600 * scale;
    return (Math.round(rand() * 200 - 100) + 0.5) * scale; // int8 ties
  });
}

const VARIANTS: Partial<LayerConfig>[] = [
  ...KV_CACHE_DTYPES.map((kvDtype) => ({ kvDtype })),
  { kvDtype: "int8", int8Scheme: "per_token_head" },
];

for (const variant of VARIANTS) {
  const label = `${variant.kvDtype}${
    variant.int8Scheme ? ` ${variant.int8Scheme}` : ""
  }`;
  Deno.test({
    name: named(
      `write() stores codes bit-exact with core's codecs and copyBlocks() copies them (${label})`,
    ),
    ignore,
    async fn() {
      const b = await sharedBackend();
      const config = layerOf({ ...variant, numKvHeads: 2, headDim: 64 });
      const scales = scalesFor(config);
      const cache = await b.createCache(config, { numBlocks: 4, scales });
      const row = config.numKvHeads * config.headDim;
      const slots = Int32Array.of(5, -1, 17, 31, 0, 40);
      const keys = hardValues(config, slots.length * row, 1);
      const values = hardValues(config, slots.length * row, 2);
      b.write(cache, { keys, values, slotMapping: slots });
      const kept = slots.filter((s) => s >= 0);
      const pick = (src: Float32Array) =>
        Float32Array.from(
          [...slots].flatMap((s, t) =>
            s < 0 ? [] : [...src.subarray(t * row, (t + 1) * row)]
          ),
        );
      const got = await b.readCodes(cache, kept);
      for (
        const [name, src, codes, sc] of [
          ["K", pick(keys), got.keys, got.keyScales],
          ["V", pick(values), got.values, got.valueScales],
        ] as const
      ) {
        if (config.int8Scheme === "per_token_head") {
          const want = quantizeInt8PerTokenHead(src, kept.length, 2, 64);
          assert.deepEqual([...codes], [...want.codes], `${name} codes`);
          assert.deepEqual([...sc!], [...want.scales], `${name} scales`);
        } else {
          const codec = codecFor(config.kvDtype);
          const want = codec.allocate(src.length);
          const [s, z] = name === "K"
            ? [scales.kScale, scales.kZeroPoint]
            : [scales.vScale, scales.vZeroPoint];
          codec.encodeArray(src, want, s, z);
          // Compare bits: NaN codes of fp32 must match too.
          const bits = (
            a: ArrayLike<number>,
          ) => [...new Uint8Array((a as Uint8Array).buffer)];
          assert.deepEqual(bits(codes), bits(want), `${name} codes`);
        }
      }
      // Block 0 (slots 0, 5) onto block 3: the copy reads back the same.
      b.copyBlocks(cache, Int32Array.of(0, 3));
      const [a, c] = await Promise.all([
        b.readCodes(cache, Int32Array.of(0, 5)),
        b.readCodes(cache, Int32Array.of(48, 53)),
      ]);
      const bytes = (x: ArrayBufferView) => [...new Uint8Array(x.buffer)];
      assert.deepEqual(bytes(c.keys), bytes(a.keys));
      assert.deepEqual(bytes(c.values), bytes(a.values));
      if (a.keyScales) assert.deepEqual([...c.keyScales!], [...a.keyScales]);
      b.disposeCache(cache);
    },
  });
}
