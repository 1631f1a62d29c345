/**
 * One interface over every KV cache element type, so that a backend can store
 * and load codes without a switch on the dtype. 16- and 32-bit caches are
 * stored unscaled, as vLLM stores them: their codecs ignore scale and zero
 * point. The fp8 codecs ignore the zero point; only int8 uses it.
 *
 * @module
 */

import type { KvCacheDtype } from "./dtype.ts";
import {
  decodeBf16,
  decodeBf16Array,
  encodeBf16,
  encodeBf16Array,
} from "./bf16.ts";
import {
  decodeFp16,
  decodeFp16Array,
  encodeFp16,
  encodeFp16Array,
} from "./fp16.ts";
import {
  decodeFp8E4m3,
  decodeFp8E4m3Array,
  encodeFp8E4m3,
  encodeFp8E4m3Array,
} from "./fp8_e4m3.ts";
import {
  decodeFp8E5m2,
  decodeFp8E5m2Array,
  encodeFp8E5m2,
  encodeFp8E5m2Array,
} from "./fp8_e5m2.ts";
import {
  decodeInt8,
  decodeInt8Array,
  encodeInt8,
  encodeInt8Array,
} from "./int8.ts";

/** Storage for codes: fp32 Float32Array, fp16/bf16 Uint16Array, fp8 Uint8Array, int8 Int8Array. */
export type CodeArray = Float32Array | Uint16Array | Uint8Array | Int8Array;

/** Encodes and decodes one KV cache dtype; every method is exact (see each format's file). */
export interface Codec {
  /** The dtype this codec stores. */
  readonly dtype: KvCacheDtype;
  /** Bytes per stored element. */
  readonly bytes: 1 | 2 | 4;
  /** A zeroed code array of `length` elements, of this dtype's storage type. */
  allocate(length: number): CodeArray;
  /** Encodes one value; returns its code (fp32: the value rounded to fp32). */
  encode(x: number, scale: number, zeroPoint: number): number;
  /** Decodes one code to its value. */
  decode(code: number, scale: number, zeroPoint: number): number;
  /**
   * Encodes `src` (shape [n], float32) into `dst` (shape [>= n], this dtype's
   * storage type; a subarray view is fine).
   */
  encodeArray(
    src: Float32Array,
    dst: CodeArray,
    scale: number,
    zeroPoint: number,
  ): void;
  /**
   * Decodes `src` (shape [n], this dtype's storage type; a subarray view is
   * fine) into `dst` (shape [>= n], float32).
   */
  decodeArray(
    src: CodeArray,
    dst: Float32Array,
    scale: number,
    zeroPoint: number,
  ): void;
}

interface Spec<A extends CodeArray> {
  dtype: KvCacheDtype;
  bytes: 1 | 2 | 4;
  type: { new (length: number): A; readonly name: string };
  encode(x: number, scale: number, zeroPoint: number): number;
  decode(code: number, scale: number, zeroPoint: number): number;
  encodeArray(
    src: Float32Array,
    dst: A,
    scale: number,
    zeroPoint: number,
  ): void;
  decodeArray(
    src: A,
    dst: Float32Array,
    scale: number,
    zeroPoint: number,
  ): void;
}

function checked<A extends CodeArray>(
  dtype: KvCacheDtype,
  role: "source" | "destination",
  arr: CodeArray,
  type: Spec<A>["type"],
  minLength: number,
): A {
  if (!(arr instanceof type)) {
    const actual = (arr as object | null)?.constructor?.name ?? String(arr);
    throw new TypeError(
      `The ${dtype} codec cannot use a ${actual} as its ${role}: expected a ${type.name}; allocate it with codecFor("${dtype}").allocate(n)`,
    );
  }
  if (arr.length < minLength) {
    throw new TypeError(
      `The ${dtype} codec got a ${role} of ${arr.length} elements but needs at least ${minLength}: pass a longer ${role} or a shorter source`,
    );
  }
  return arr;
}

function make<A extends CodeArray>(spec: Spec<A>): Codec {
  const { dtype, type } = spec;
  return Object.freeze({
    dtype,
    bytes: spec.bytes,
    allocate: (length: number): CodeArray => new type(length),
    encode: spec.encode,
    decode: spec.decode,
    encodeArray(src: Float32Array, dst: CodeArray, s: number, zp: number) {
      const out = checked(dtype, "destination", dst, type, src.length);
      spec.encodeArray(src, out, s, zp);
    },
    decodeArray(src: CodeArray, dst: Float32Array, s: number, zp: number) {
      const codes = checked(dtype, "source", src, type, 0);
      const out = checked(dtype, "destination", dst, Float32Array, src.length);
      spec.decodeArray(codes, out, s, zp);
    },
  });
}

const CODECS: Readonly<Record<KvCacheDtype, Codec>> = {
  fp32: make({
    dtype: "fp32",
    bytes: 4,
    type: Float32Array,
    encode: (x) => Math.fround(x),
    decode: (code) => code,
    encodeArray: (src, dst) => dst.set(src),
    decodeArray: (src, dst) => dst.set(src),
  }),
  fp16: make({
    dtype: "fp16",
    bytes: 2,
    type: Uint16Array,
    encode: (x) => encodeFp16(x),
    decode: (code) => decodeFp16(code),
    encodeArray: (src, dst) => encodeFp16Array(src, dst),
    decodeArray: (src, dst) => decodeFp16Array(src, dst),
  }),
  bf16: make({
    dtype: "bf16",
    bytes: 2,
    type: Uint16Array,
    encode: (x) => encodeBf16(x),
    decode: (code) => decodeBf16(code),
    encodeArray: (src, dst) => encodeBf16Array(src, dst),
    decodeArray: (src, dst) => decodeBf16Array(src, dst),
  }),
  fp8_e4m3: make({
    dtype: "fp8_e4m3",
    bytes: 1,
    type: Uint8Array,
    encode: (x, s) => encodeFp8E4m3(x, s),
    decode: (code, s) => decodeFp8E4m3(code, s),
    encodeArray: (src, dst, s) => encodeFp8E4m3Array(src, s, dst),
    decodeArray: (src, dst, s) => decodeFp8E4m3Array(src, s, dst),
  }),
  fp8_e5m2: make({
    dtype: "fp8_e5m2",
    bytes: 1,
    type: Uint8Array,
    encode: (x, s) => encodeFp8E5m2(x, s),
    decode: (code, s) => decodeFp8E5m2(code, s),
    encodeArray: (src, dst, s) => encodeFp8E5m2Array(src, s, dst),
    decodeArray: (src, dst, s) => decodeFp8E5m2Array(src, s, dst),
  }),
  int8: make({
    dtype: "int8",
    bytes: 1,
    type: Int8Array,
    encode: encodeInt8,
    decode: decodeInt8,
    encodeArray: (src, dst, s, zp) => encodeInt8Array(src, s, zp, dst),
    decodeArray: (src, dst, s, zp) => decodeInt8Array(src, s, zp, dst),
  }),
};

/**
 * The codec for a KV cache dtype.
 *
 * @throws {TypeError} When `dtype` is not a KV cache dtype.
 *
 * @example Store and load fp8 codes in a subarray
 * ```ts
 * import { codecFor } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * const codec = codecFor("fp8_e4m3");
 * const cache = codec.allocate(8);
 * codec.encodeArray(new Float32Array([1, -2]), cache.subarray(4, 6), 0.5, 0);
 * const out = new Float32Array(2);
 * codec.decodeArray(cache.subarray(4, 6), out, 0.5, 0);
 * assert.deepEqual([...out], [1, -2]);
 * assert.equal(codec.bytes, 1);
 * ```
 */
export function codecFor(dtype: KvCacheDtype): Codec {
  if (!Object.hasOwn(CODECS, dtype)) {
    throw new TypeError(
      `Unknown KV cache dtype "${dtype}": use one of ${
        Object.keys(CODECS).join(", ")
      }`,
    );
  }
  return CODECS[dtype];
}
