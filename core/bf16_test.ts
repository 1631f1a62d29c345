import assert from "node:assert/strict";
import {
  decodeBf16,
  decodeBf16Array,
  encodeBf16,
  encodeBf16Array,
} from "./bf16.ts";
import { mulberry32 } from "./prng.ts";

// An independent model: the bfloat16 formula, the sorted positive finite
// values with inf standing one step past the largest (2^128, where an
// unbounded exponent would put it), and nearest search with ties to even.
function formula(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 7) & 0xff;
  const m = h & 0x7f;
  if (e === 255) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * Math.pow(2, -126) * (m / 128);
  return sign * Math.pow(2, e - 127) * (1 + m / 128);
}

const STEPS = Array.from(
  { length: 0x7f81 },
  (_, h) => h === 0x7f80 ? 2 ** 128 : formula(h),
);

/** Expected code for a float32 value given by its bits. */
function reference(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  const sign = bits >>> 31 ? 0x8000 : 0;
  F32_BITS[0] = bits;
  const a = Math.abs(F32[0]);
  if (a >= 2 ** 128) return sign | 0x7f80;
  let lo = 0;
  let hi = 0x7f80;
  while (lo < hi) { // first step >= a
    const mid = (lo + hi) >> 1;
    if (STEPS[mid] < a) lo = mid + 1;
    else hi = mid;
  }
  if (STEPS[hi] === a) return sign | hi;
  const mid = (STEPS[hi - 1] + STEPS[hi]) / 2;
  if (a !== mid) return sign | (a < mid ? hi - 1 : hi);
  return sign | (hi % 2 === 0 ? hi : hi - 1);
}

const F32 = new Float32Array(1);
const F32_BITS = new Uint32Array(F32.buffer);

function fp16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  return e === 0
    ? sign * 2 ** -14 * (m / 1024)
    : sign * 2 ** (e - 15) * (1 + m / 1024);
}

function checkAgainstReference(src: Float32Array): void {
  const words = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const codes = encodeBf16Array(src);
  for (let i = 0; i < src.length; i++) {
    const want = reference(words[i]);
    assert.equal(codes[i], want, `array bits=0x${words[i].toString(16)}`);
    if (!Number.isNaN(src[i])) {
      assert.equal(encodeBf16(src[i]), want, `bits=0x${words[i].toString(16)}`);
    }
  }
}

Deno.test("decodeBf16() maps all 65,536 codes to their bfloat16 values", () => {
  const codes = new Uint16Array(65536).map((_, i) => i);
  const arr = decodeBf16Array(codes);
  for (let h = 0; h < 65536; h++) {
    assert.ok(Object.is(decodeBf16(h), formula(h)), `code 0x${h.toString(16)}`);
    assert.ok(Object.is(arr[h], formula(h)), `array code 0x${h.toString(16)}`);
  }
});

Deno.test("encodeBf16() agrees with a nearest-value search on every finite fp16 value", () => {
  const values = [];
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) !== 0x7c00) values.push(fp16Value(h));
  }
  checkAgainstReference(new Float32Array(values));
});

Deno.test("encodeBf16() agrees with a nearest-value search on random float32 bit patterns", () => {
  const rand = mulberry32(3);
  const words = new Uint32Array(300000).map(() => Math.floor(rand() * 2 ** 32));
  checkAgainstReference(new Float32Array(words.buffer));
});

Deno.test("encodeBf16() rounds every float32 next to a bf16 tie correctly", () => {
  const words: number[] = [];
  for (let h = 0; h < 0x7f80; h += 7) {
    const tie = ((h << 16) | 0x8000) >>> 0;
    for (let d = -1; d <= 1; d++) words.push(tie + d, (tie + d) | 0x80000000);
  }
  checkAgainstReference(new Float32Array(new Uint32Array(words).buffer));
});

Deno.test("encodeBf16() rounds ties to even and overflows to inf", () => {
  assert.equal(encodeBf16(1 + 2 ** -8), 0x3f80);
  assert.equal(encodeBf16(1 + 3 * 2 ** -8), 0x3f82);
  assert.equal(encodeBf16(-(1 + 2 ** -8 + 2 ** -20)), 0xbf81);
  assert.equal(encodeBf16(3.3895313892515355e38), 0x7f7f);
  assert.equal(encodeBf16(3.4028234663852886e38), 0x7f80); // largest fp32 rounds up
  assert.equal(encodeBf16(-Infinity), 0xff80);
  assert.equal(encodeBf16(-0), 0x8000);
  assert.equal(encodeBf16(2 ** -133), 0x0001); // smallest bf16 subnormal
});

Deno.test("encodeBf16() rounds a float64 to float32 first", () => {
  const rand = mulberry32(4);
  for (let i = 0; i < 10000; i++) {
    const x = (rand() - 0.5) * 2 ** (rand() * 200 - 100);
    assert.equal(encodeBf16(x), encodeBf16(Math.fround(x)));
  }
});

Deno.test("encodeBf16() keeps NaN a quiet NaN with its sign", () => {
  assert.equal(encodeBf16(NaN) & 0x7fff, 0x7fc0);
  const nans = new Float32Array(
    new Uint32Array([0x7f800001, 0xff800001, 0x7fc00000, 0xffffffff]).buffer,
  );
  assert.deepEqual([...encodeBf16Array(nans)], [
    0x7fc0,
    0xffc0,
    0x7fc0,
    0xffff,
  ]);
});

Deno.test("bf16 array forms work on subarray views", () => {
  const src = new Float32Array([9, 1, -2, 0.5, 9]).subarray(1, 4);
  const dst = new Uint16Array(6);
  encodeBf16Array(src, dst.subarray(2));
  assert.deepEqual([...dst], [0, 0, 0x3f80, 0xc000, 0x3f00, 0]);
  const back = new Float32Array(5);
  decodeBf16Array(dst.subarray(2, 5), back.subarray(1));
  assert.deepEqual([...back], [0, 1, -2, 0.5, 0]);
});

Deno.test("bf16 functions reject bad codes and short destinations", () => {
  for (const h of [-1, 65536, 0.5, NaN]) {
    assert.throws(() => decodeBf16(h), /Invalid bf16 code .*: pass an integer/);
  }
  assert.throws(
    () => encodeBf16Array(new Float32Array(3), new Uint16Array(2)),
    /Destination holds 2 elements but the source has 3/,
  );
  assert.throws(
    () => decodeBf16Array(new Uint16Array(3), new Float32Array(1)),
    RangeError,
  );
});
