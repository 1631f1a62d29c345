/**
 * Encode and decode throughput of the KV cache codecs on 1M float32 values
 * (1024 tokens x 8 kv heads x 128 head dim, roughly normal data). Each case
 * is named `codec:<op>;dtype=<dtype>` so a slow one can be found by name.
 *
 * Run: `deno bench bench/codecs_bench.ts`
 *
 * @module
 */

import { decodeBf16Array, encodeBf16Array } from "../core/bf16.ts";
import { decodeFp16Array, encodeFp16Array } from "../core/fp16.ts";
import { decodeFp8E4m3Array, encodeFp8E4m3Array } from "../core/fp8_e4m3.ts";
import { decodeFp8E5m2Array, encodeFp8E5m2Array } from "../core/fp8_e5m2.ts";
import {
  decodeInt8Array,
  dequantizeInt8PerTokenHead,
  encodeInt8Array,
  quantizeInt8PerTokenHead,
} from "../core/int8.ts";
import { mulberry32 } from "../core/prng.ts";

const TOKENS = 1024;
const HEADS = 8;
const HEAD_DIM = 128;
const N = TOKENS * HEADS * HEAD_DIM;

/** Sum of four uniforms, centred: close enough to a normal for timing. */
function normalish(n: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  return new Float32Array(n).map(() => rand() + rand() + rand() + rand() - 2);
}

const src = normalish(N, 1);
const out = new Float32Array(N);
const u16 = new Uint16Array(N);
const u8 = new Uint8Array(N);
const i8 = new Int8Array(N);
const perHead = {
  codes: new Int8Array(N),
  scales: new Float32Array(TOKENS * HEADS),
};
const FP8_E4M3_SCALE = 2 / 448;
const FP8_E5M2_SCALE = 2 / 57344;
const INT8_SCALE = 2 / 127;

encodeFp16Array(src, u16);
const fp16Codes = u16.slice();
encodeBf16Array(src, u16);
const bf16Codes = u16.slice();
const e4m3Codes = encodeFp8E4m3Array(src, FP8_E4M3_SCALE);
const e5m2Codes = encodeFp8E5m2Array(src, FP8_E5M2_SCALE);
const int8Codes = encodeInt8Array(src, INT8_SCALE);
const perHeadCodes = quantizeInt8PerTokenHead(src, TOKENS, HEADS, HEAD_DIM);

const ENCODE = "encode 1M";
const DECODE = "decode 1M";

Deno.bench("codec:encode;dtype=fp16", { group: ENCODE, baseline: true }, () => {
  encodeFp16Array(src, u16);
});
Deno.bench("codec:encode;dtype=bf16", { group: ENCODE }, () => {
  encodeBf16Array(src, u16);
});
Deno.bench("codec:encode;dtype=fp8_e4m3", { group: ENCODE }, () => {
  encodeFp8E4m3Array(src, FP8_E4M3_SCALE, u8);
});
Deno.bench("codec:encode;dtype=fp8_e5m2", { group: ENCODE }, () => {
  encodeFp8E5m2Array(src, FP8_E5M2_SCALE, u8);
});
Deno.bench("codec:encode;dtype=int8", { group: ENCODE }, () => {
  encodeInt8Array(src, INT8_SCALE, 0, i8);
});
Deno.bench(
  "codec:encode;dtype=int8;scheme=per_token_head",
  { group: ENCODE },
  () => {
    quantizeInt8PerTokenHead(src, TOKENS, HEADS, HEAD_DIM, perHead);
  },
);

Deno.bench("codec:decode;dtype=fp16", { group: DECODE, baseline: true }, () => {
  decodeFp16Array(fp16Codes, out);
});
Deno.bench("codec:decode;dtype=bf16", { group: DECODE }, () => {
  decodeBf16Array(bf16Codes, out);
});
Deno.bench("codec:decode;dtype=fp8_e4m3", { group: DECODE }, () => {
  decodeFp8E4m3Array(e4m3Codes, FP8_E4M3_SCALE, out);
});
Deno.bench("codec:decode;dtype=fp8_e5m2", { group: DECODE }, () => {
  decodeFp8E5m2Array(e5m2Codes, FP8_E5M2_SCALE, out);
});
Deno.bench("codec:decode;dtype=int8", { group: DECODE }, () => {
  decodeInt8Array(int8Codes, INT8_SCALE, 0, out);
});
Deno.bench(
  "codec:decode;dtype=int8;scheme=per_token_head",
  { group: DECODE },
  () => {
    dequantizeInt8PerTokenHead(
      perHeadCodes.codes,
      perHeadCodes.scales,
      TOKENS,
      HEADS,
      HEAD_DIM,
      out,
    );
  },
);
