import assert from "node:assert/strict";
import { type CodeArray, codecFor } from "./codec.ts";
import { dtypeInfo, KV_CACHE_DTYPES, type KvCacheDtype } from "./dtype.ts";
import { encodeBf16 } from "./bf16.ts";
import { encodeFp16 } from "./fp16.ts";
import { decodeFp8E4m3, encodeFp8E4m3 } from "./fp8_e4m3.ts";
import { encodeFp8E5m2 } from "./fp8_e5m2.ts";
import { decodeInt8, encodeInt8 } from "./int8.ts";
import { mulberry32 } from "./prng.ts";

const STORAGE: Record<KvCacheDtype, string> = {
  fp32: "Float32Array",
  fp16: "Uint16Array",
  bf16: "Uint16Array",
  fp8_e4m3: "Uint8Array",
  fp8_e5m2: "Uint8Array",
  int8: "Int8Array",
};

function randomValues(n: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const x = new Float32Array(n).map(() =>
    (rand() - 0.5) * 2 ** (rand() * 16 - 8)
  );
  x.set([0, -0, 1e9, -1e9, Infinity, -Infinity, NaN, 448, 57344, 65520]);
  return x;
}

Deno.test("codecFor() gives every dtype its storage type and width", () => {
  for (const dtype of KV_CACHE_DTYPES) {
    const codec = codecFor(dtype);
    assert.equal(codec.dtype, dtype);
    assert.equal(codec.bytes, dtypeInfo(dtype).bytes);
    const arr = codec.allocate(5);
    assert.equal(arr.constructor.name, STORAGE[dtype]);
    assert.equal(arr.length, 5);
    assert.equal(arr.BYTES_PER_ELEMENT, codec.bytes);
    assert.ok(arr.every((v) => v === 0));
  }
});

Deno.test("codecFor() scalar methods are the format functions", () => {
  const expected: Record<KvCacheDtype, (x: number) => number> = {
    fp32: Math.fround,
    fp16: encodeFp16,
    bf16: encodeBf16,
    fp8_e4m3: (x) => encodeFp8E4m3(x, 0.0173),
    fp8_e5m2: (x) => encodeFp8E5m2(x, 0.0173),
    int8: (x) => encodeInt8(x, 0.0173, 3),
  };
  for (const dtype of KV_CACHE_DTYPES) {
    const codec = codecFor(dtype);
    for (const x of randomValues(200, 9)) {
      assert.ok(
        Object.is(codec.encode(x, 0.0173, 3), expected[dtype](x)),
        `${dtype} x=${x}`,
      );
    }
  }
  assert.equal(
    codecFor("fp8_e4m3").decode(0x38, 3.5, 0),
    decodeFp8E4m3(0x38, 3.5),
  );
  assert.equal(codecFor("int8").decode(10, 0.5, 4), decodeInt8(10, 0.5, 4));
});

Deno.test("codecFor() array methods agree with its scalar methods", () => {
  const src = randomValues(5000, 10);
  for (const dtype of KV_CACHE_DTYPES) {
    const codec = codecFor(dtype);
    for (const [scale, zp] of [[1, 0], [0.0173, 0], [3.5, -4]]) {
      const codes = codec.allocate(src.length);
      codec.encodeArray(src, codes, scale, zp);
      const back = new Float32Array(src.length);
      codec.decodeArray(codes, back, scale, zp);
      for (let i = 0; i < src.length; i++) {
        const code = codec.encode(src[i], scale, zp);
        if (!(dtype === "fp32" && Number.isNaN(code))) {
          assert.ok(
            Object.is(codes[i], code),
            `${dtype} x=${src[i]} scale=${scale}`,
          );
        }
        assert.ok(Object.is(back[i], codec.decode(codes[i], scale, zp)));
      }
    }
  }
});

Deno.test("codecFor() stores 16- and 32-bit caches unscaled", () => {
  for (const dtype of ["fp32", "fp16", "bf16"] as const) {
    const codec = codecFor(dtype);
    const a = codec.allocate(4);
    const b = codec.allocate(4);
    const src = new Float32Array([1, -2.5, 0.1, 1000]);
    codec.encodeArray(src, a, 1, 0);
    codec.encodeArray(src, b, 3.5, 7);
    assert.deepEqual(a, b);
    assert.equal(codec.decode(codec.encode(2, 3.5, 7), 0.1, -3), 2);
  }
});

Deno.test("codecFor() encodes into and decodes from subarray views", () => {
  for (const dtype of KV_CACHE_DTYPES) {
    const codec = codecFor(dtype);
    const cache = codec.allocate(12);
    const row = new Float32Array([0.5, -1, 2]);
    codec.encodeArray(row, cache.subarray(6, 9), 0.5, 0);
    assert.ok(cache.subarray(0, 6).every((v) => v === 0), dtype);
    assert.ok(cache.subarray(9).every((v) => v === 0), dtype);
    const out = new Float32Array(5);
    codec.decodeArray(cache.subarray(6, 9), out.subarray(1, 4), 0.5, 0);
    assert.deepEqual([...out], [0, 0.5, -1, 2, 0], dtype);
  }
});

Deno.test("codecFor() names the actual and expected array types when they differ", () => {
  const wrong: Record<KvCacheDtype, CodeArray> = {
    fp32: new Uint16Array(4),
    fp16: new Float32Array(4),
    bf16: new Uint8Array(4),
    fp8_e4m3: new Int8Array(4),
    fp8_e5m2: new Uint16Array(4),
    int8: new Uint8Array(4),
  };
  for (const dtype of KV_CACHE_DTYPES) {
    const codec = codecFor(dtype);
    const actual = wrong[dtype].constructor.name;
    assert.throws(
      () => codec.encodeArray(new Float32Array(4), wrong[dtype], 1, 0),
      {
        name: "TypeError",
        message:
          `The ${dtype} codec cannot use a ${actual} as its destination: expected a ${
            STORAGE[dtype]
          }; allocate it with codecFor("${dtype}").allocate(n)`,
      },
    );
    assert.throws(
      () => codec.decodeArray(wrong[dtype], new Float32Array(4), 1, 0),
      (e: unknown) =>
        e instanceof TypeError &&
        e.message.includes(`as its source: expected a ${STORAGE[dtype]}`),
    );
  }
  assert.throws(
    () =>
      codecFor("int8").decodeArray(
        new Int8Array(2),
        new Uint8Array(2) as never,
        1,
        0,
      ),
    /cannot use a Uint8Array as its destination: expected a Float32Array/,
  );
});

Deno.test("codecFor() rejects a destination shorter than the source", () => {
  for (const dtype of KV_CACHE_DTYPES) {
    const codec = codecFor(dtype);
    assert.throws(
      () =>
        codec.encodeArray(
          new Float32Array(8),
          codec.allocate(8).subarray(3),
          1,
          0,
        ),
      {
        name: "TypeError",
        message:
          `The ${dtype} codec got a destination of 5 elements but needs at least 8: pass a longer destination or a shorter source`,
      },
    );
    assert.throws(
      () => codec.decodeArray(codec.allocate(8), new Float32Array(2), 1, 0),
      TypeError,
    );
  }
});

Deno.test("codecFor() rejects an unknown dtype and lists the valid ones", () => {
  assert.throws(
    () => codecFor("fp4" as KvCacheDtype),
    {
      name: "TypeError",
      message:
        'Unknown KV cache dtype "fp4": use one of fp32, fp16, bf16, fp8_e4m3, fp8_e5m2, int8',
    },
  );
  assert.throws(() => codecFor("toString" as KvCacheDtype), TypeError);
});
