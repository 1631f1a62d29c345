import assert from "node:assert/strict";
import {
  decodeFp16,
  decodeFp16Array,
  encodeFp16,
  encodeFp16Array,
} from "./fp16.ts";

// An independent model: the IEEE formula, the sorted positive finite values
// with inf standing one step past 65504 (2^16, where an unbounded exponent
// would put it), and nearest-value search with ties to the even code.
function formula(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * Math.pow(2, -14) * (m / 1024);
  return sign * Math.pow(2, e - 15) * (1 + m / 1024);
}

const STEPS = Array.from(
  { length: 0x7c01 },
  (_, h) => h === 0x7c00 ? 65536 : formula(h),
);

function reference(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65536) return sign | 0x7c00;
  let lo = 0;
  let hi = 0x7c00;
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
function f32(bits: number): number {
  F32_BITS[0] = bits;
  return F32[0];
}

Deno.test("decodeFp16() maps all 65,536 codes to their IEEE binary16 values", () => {
  const codes = new Uint16Array(65536).map((_, i) => i);
  const arr = decodeFp16Array(codes);
  for (let h = 0; h < 65536; h++) {
    assert.ok(Object.is(decodeFp16(h), formula(h)), `code 0x${h.toString(16)}`);
    assert.ok(Object.is(arr[h], formula(h)), `array code 0x${h.toString(16)}`);
  }
  assert.equal(decodeFp16(0x7bff), 65504);
  assert.equal(decodeFp16(0x0001), 2 ** -24);
  assert.equal(decodeFp16(0x0400), 2 ** -14);
});

Deno.test("encodeFp16() inverts decodeFp16() on every non-NaN code", () => {
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7fff) > 0x7c00) {
      assert.equal(encodeFp16(decodeFp16(h)), 0x7e00);
    } else {
      assert.equal(encodeFp16(decodeFp16(h)), h);
    }
  }
});

Deno.test("encodeFp16() agrees with a nearest-value search over a dense float32 sweep", () => {
  const n = Math.floor(2 ** 32 / 4099) + 1;
  const src = new Float32Array(n);
  const words = new Uint32Array(src.buffer);
  for (let i = 0; i < n; i++) words[i] = i * 4099;
  const codes = encodeFp16Array(src);
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(src[i])) continue; // NaN signs are checked on their own
    const want = reference(src[i]);
    assert.equal(encodeFp16(src[i]), want, `bits=0x${words[i].toString(16)}`);
    assert.equal(codes[i], want, `array bits=0x${words[i].toString(16)}`);
  }
});

Deno.test("encodeFp16() rounds every float32 next to an fp16 value or tie correctly", () => {
  const inputs: number[] = [];
  for (let h = 0; h < 0x7c00; h++) {
    for (const anchor of [STEPS[h], (STEPS[h] + STEPS[h + 1]) / 2]) {
      F32[0] = anchor;
      const base = F32_BITS[0];
      for (let d = -2; d <= 2; d++) {
        if (base + d >= 0) inputs.push(f32(base + d), -f32(base + d));
      }
    }
  }
  const src = new Float32Array(inputs);
  const codes = encodeFp16Array(src);
  for (let i = 0; i < src.length; i++) {
    const want = reference(src[i]);
    assert.equal(encodeFp16(src[i]), want, `x=${src[i]}`);
    assert.equal(codes[i], want, `array x=${src[i]}`);
  }
});

Deno.test("encodeFp16() rounds a float64 once, not through float32", () => {
  for (let h = 0; h < 0x7c00; h++) {
    const mid = (STEPS[h] + STEPS[h + 1]) / 2;
    // Math.fround() would land both of these on the tie itself.
    const above = mid * (1 + 2 ** -40);
    const below = mid * (1 - 2 ** -40);
    assert.equal(encodeFp16(above), h + 1, `above x=${mid}`);
    assert.equal(encodeFp16(below), h, `below x=${mid}`);
    assert.equal(encodeFp16(-above), 0x8000 | (h + 1));
  }
});

Deno.test("encodeFp16() rounds ties to even and overflows to inf", () => {
  assert.equal(encodeFp16(1 + 2 ** -11), 0x3c00);
  assert.equal(encodeFp16(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(encodeFp16(2 ** -25), 0x0000);
  assert.equal(encodeFp16(-(2 ** -25)), 0x8000);
  assert.equal(encodeFp16(3 * 2 ** -25), 0x0002);
  assert.equal(encodeFp16(65519.99), 0x7bff);
  assert.equal(encodeFp16(65520), 0x7c00);
  assert.equal(encodeFp16(1e300), 0x7c00);
  assert.equal(encodeFp16(-1e300), 0xfc00);
  assert.equal(encodeFp16(-Infinity), 0xfc00);
  assert.equal(encodeFp16(5e-324), 0x0000);
  assert.equal(encodeFp16(-5e-324), 0x8000);
  assert.equal(encodeFp16(-0), 0x8000);
});

Deno.test("encodeFp16() turns NaN into 0x7e00 and keeps its sign bit", () => {
  assert.equal(encodeFp16(NaN), 0x7e00);
  const nans = new Float32Array(
    new Uint32Array([0x7fc00000, 0xffc00000, 0x7f800001, 0xff812345]).buffer,
  );
  assert.deepEqual([...encodeFp16Array(nans)], [
    0x7e00,
    0xfe00,
    0x7e00,
    0xfe00,
  ]);
  for (let i = 0; i < nans.length; i++) {
    assert.equal(encodeFp16(nans[i]) & 0x7fff, 0x7e00);
  }
});

Deno.test("decodeFp16Array() keeps NaN payloads and the sign of zero", () => {
  const out = decodeFp16Array(new Uint16Array([0x7c01, 0xfe00, 0x8000]));
  const bits = new Uint32Array(out.buffer);
  assert.equal(bits[0], 0x7f802000);
  assert.equal(bits[1], 0xffc00000);
  assert.equal(bits[2], 0x80000000);
});

Deno.test("fp16 array forms work on subarray views", () => {
  const src = new Float32Array([9, 1, 2, 65504, 9]).subarray(1, 4);
  const dst = new Uint16Array(6);
  encodeFp16Array(src, dst.subarray(2));
  assert.deepEqual([...dst], [0, 0, 0x3c00, 0x4000, 0x7bff, 0]);
  const back = new Float32Array(5);
  decodeFp16Array(dst.subarray(2, 5), back.subarray(1));
  assert.deepEqual([...back], [0, 1, 2, 65504, 0]);
});

Deno.test("fp16 functions reject bad codes and short destinations", () => {
  for (const h of [-1, 65536, 0.5, NaN]) {
    assert.throws(() => decodeFp16(h), /Invalid fp16 code .*: pass an integer/);
  }
  assert.throws(
    () => encodeFp16Array(new Float32Array(3), new Uint16Array(2)),
    /Destination holds 2 elements but the source has 3/,
  );
  assert.throws(
    () => decodeFp16Array(new Uint16Array(3), new Float32Array(1)),
    RangeError,
  );
});
