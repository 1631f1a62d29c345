import assert from "node:assert/strict";
import {
  decodeFp8E5m2,
  decodeFp8E5m2Array,
  encodeFp8E5m2,
  encodeFp8E5m2Array,
} from "./fp8_e5m2.ts";
import { mulberry32 } from "./prng.ts";

// An independent model of the format: the OCP formula, a table of the
// positive finite values, and nearest-value search with ties to the even code.
function formula(code: number): number {
  const sign = code & 0x80 ? -1 : 1;
  const e = (code >> 2) & 0x1f;
  const m = code & 3;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * Math.pow(2, 1 - 15) * (m / 4);
  return sign * Math.pow(2, e - 15) * (1 + m / 4);
}

const POSITIVE = Array.from({ length: 0x7c }, (_, c) => formula(c)); // 0 .. 57344

function reference(x: number, scale = 1): number {
  const xf = Math.fround(x);
  const y = Math.fround(xf / Math.fround(scale));
  if (Number.isNaN(y)) return 0x7e;
  const sign = y < 0 || Object.is(y, -0) ? 0x80 : 0;
  if (Math.abs(xf) === Infinity) return sign | 0x7c;
  const a = Math.abs(y);
  if (a >= 57344) return sign | 0x7b;
  let hi = 0;
  while (POSITIVE[hi] < a) hi++;
  if (POSITIVE[hi] === a) return sign | hi;
  const lo = hi - 1;
  const mid = (POSITIVE[lo] + POSITIVE[hi]) / 2;
  if (a !== mid) return sign | (a < mid ? lo : hi);
  return sign | (lo % 2 === 0 ? lo : hi);
}

function fp16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  return e === 0
    ? sign * 2 ** -14 * (m / 1024)
    : sign * 2 ** (e - 15) * (1 + m / 1024);
}

/** Every finite fp16 value, both signs, as float32. */
const FP16_FINITE = new Float32Array(
  Array.from({ length: 65536 }, (_, h) => h).filter((h) =>
    (h & 0x7c00) !== 0x7c00
  ).map(fp16Value),
);

const SCALES = [1, 0.0173, 3.5, 2 ** -12, 1 / 3];

Deno.test("decodeFp8E5m2() maps all 256 codes to their OCP E5M2 values", () => {
  for (let c = 0; c < 256; c++) {
    assert.ok(
      Object.is(decodeFp8E5m2(c), formula(c)),
      `code 0x${c.toString(16)}`,
    );
  }
  assert.equal(decodeFp8E5m2(0x7b), 57344);
  assert.equal(decodeFp8E5m2(0xfb), -57344);
  assert.equal(decodeFp8E5m2(0x01), 2 ** -16);
  assert.equal(decodeFp8E5m2(0x04), 2 ** -14);
  assert.equal(decodeFp8E5m2(0x3c), 1);
  assert.equal(decodeFp8E5m2(0x7c), Infinity);
  assert.equal(decodeFp8E5m2(0xfc), -Infinity);
  assert.ok(Object.is(decodeFp8E5m2(0x80), -0));
  for (const c of [0x7d, 0x7e, 0x7f, 0xfd, 0xfe, 0xff]) {
    assert.ok(Number.isNaN(decodeFp8E5m2(c)));
  }
});

Deno.test("decodeFp8E5m2() multiplies by the scale in fp32", () => {
  for (const s of SCALES) {
    for (let c = 0; c < 256; c++) {
      assert.ok(
        Object.is(
          decodeFp8E5m2(c, s),
          Math.fround(formula(c) * Math.fround(s)),
        ),
      );
    }
  }
});

Deno.test("encodeFp8E5m2() agrees with a nearest-value search on every finite fp16 value", () => {
  for (const s of SCALES) {
    const codes = encodeFp8E5m2Array(FP16_FINITE, s);
    for (let i = 0; i < FP16_FINITE.length; i++) {
      const want = reference(FP16_FINITE[i], s);
      assert.equal(
        encodeFp8E5m2(FP16_FINITE[i], s),
        want,
        `x=${FP16_FINITE[i]} scale=${s}`,
      );
      assert.equal(codes[i], want, `array x=${FP16_FINITE[i]} scale=${s}`);
    }
  }
});

Deno.test("encodeFp8E5m2() rounds ties to the even code", () => {
  assert.equal(encodeFp8E5m2(1.125), 0x3c); // 1 | 1.25
  assert.equal(encodeFp8E5m2(1.375), 0x3e); // 1.25 | 1.5
  assert.equal(encodeFp8E5m2(-1.875), 0xc0); // 1.75 | 2
  assert.equal(encodeFp8E5m2(53248), 0x7a); // 49152 | 57344
  assert.equal(encodeFp8E5m2(2 ** -17), 0x00); // half the smallest subnormal
  assert.equal(encodeFp8E5m2(-(2 ** -17)), 0x80);
  assert.equal(encodeFp8E5m2(3 * 2 ** -17), 0x02);
  assert.equal(encodeFp8E5m2(7 * 2 ** -17), 0x04); // 3 | 4 across the normal boundary
});

Deno.test("encodeFp8E5m2() saturates finite inputs to 57344 and keeps infinities", () => {
  for (const x of [57344, 57345, 61439, 61440, 65536, 1e10, 3.4e38]) {
    assert.equal(encodeFp8E5m2(x), 0x7b, `x=${x}`);
    assert.equal(encodeFp8E5m2(-x), 0xfb, `x=${-x}`);
  }
  // The fp32 division overflows to inf, but the input was finite.
  assert.equal(encodeFp8E5m2(3e38, 1e-3), 0x7b);
  assert.equal(encodeFp8E5m2(-3e38, 1e-3), 0xfb);
  const big = new Float32Array([3e38, -3e38, Infinity, -Infinity]);
  assert.deepEqual([...encodeFp8E5m2Array(big, 1e-3)], [
    0x7b,
    0xfb,
    0x7c,
    0xfc,
  ]);
  assert.equal(encodeFp8E5m2(Infinity), 0x7c);
  assert.equal(encodeFp8E5m2(-Infinity, 3.5), 0xfc);
  // A float64 beyond fp32 range is inf once rounded to fp32.
  assert.equal(encodeFp8E5m2(1e300), 0x7c);
});

Deno.test("encodeFp8E5m2() keeps -0 and turns NaN into 0x7e", () => {
  assert.equal(encodeFp8E5m2(-0), 0x80);
  assert.equal(encodeFp8E5m2(0), 0x00);
  assert.equal(encodeFp8E5m2(-1e-30), 0x80);
  assert.equal(encodeFp8E5m2(NaN), 0x7e);
  assert.equal(encodeFp8E5m2(-NaN, 3.5), 0x7e);
  const nans = new Float32Array(
    new Uint32Array([0x7fc00000, 0xffc00000, 0x7f800001]).buffer,
  );
  assert.deepEqual([...encodeFp8E5m2Array(nans, 1)], [0x7e, 0x7e, 0x7e]);
});

Deno.test("encodeFp8E5m2() rounds correctly next to every tie, with scales", () => {
  const f = new Float32Array(1);
  const bits = new Uint32Array(f.buffer);
  for (const s of SCALES) {
    for (let c = 0; c < 0x7b; c++) {
      f[0] = ((POSITIVE[c] + POSITIVE[c + 1]) / 2) * s;
      const base = bits[0];
      for (let d = -2; d <= 2; d++) {
        bits[0] = base + d;
        assert.equal(encodeFp8E5m2(f[0], s), reference(f[0], s));
        assert.equal(encodeFp8E5m2Array(f, s)[0], reference(f[0], s));
      }
    }
  }
});

Deno.test("encodeFp8E5m2Array() matches encodeFp8E5m2() on random bit patterns", () => {
  const rand = mulberry32(2);
  const bits = new Uint32Array(50000).map(() => Math.floor(rand() * 2 ** 32));
  const src = new Float32Array(bits.buffer);
  for (const s of SCALES) {
    const codes = encodeFp8E5m2Array(src, s);
    for (let i = 0; i < src.length; i++) {
      assert.equal(
        codes[i],
        encodeFp8E5m2(src[i], s),
        `bits=0x${bits[i].toString(16)}`,
      );
    }
  }
});

Deno.test("decodeFp8E5m2Array() matches decodeFp8E5m2() for every code", () => {
  const codes = new Uint8Array(256).map((_, i) => i);
  for (const s of SCALES) {
    const out = decodeFp8E5m2Array(codes, s);
    for (let c = 0; c < 256; c++) {
      assert.ok(Object.is(out[c], decodeFp8E5m2(c, s)));
    }
  }
});

Deno.test("encodeFp8E5m2Array() writes into subarray views", () => {
  const src = new Float32Array([0, 1, 2, 3, 4, 5, 6]).subarray(2, 5);
  const dst = new Uint8Array(8);
  encodeFp8E5m2Array(src, 1, dst.subarray(4));
  assert.deepEqual([...dst], [0, 0, 0, 0, 0x40, 0x42, 0x44, 0]);
  const back = new Float32Array(5);
  decodeFp8E5m2Array(dst.subarray(4, 7), 1, back.subarray(1));
  assert.deepEqual([...back], [0, 2, 3, 4, 0]);
});

Deno.test("fp8_e5m2 functions reject bad scales, codes and short destinations", () => {
  for (const s of [0, -1, NaN, Infinity, 1e-50]) {
    assert.throws(
      () => encodeFp8E5m2(1, s),
      /Invalid fp8_e5m2 scale .*: pass a positive finite/,
    );
    assert.throws(() => encodeFp8E5m2Array(new Float32Array(1), s), RangeError);
    assert.throws(() => decodeFp8E5m2Array(new Uint8Array(1), s), RangeError);
  }
  for (const c of [-1, 256, 1.5, NaN]) {
    assert.throws(() => decodeFp8E5m2(c), /Invalid fp8_e5m2 code/);
  }
  assert.throws(
    () => encodeFp8E5m2Array(new Float32Array(4), 1, new Uint8Array(3)),
    /Destination holds 3 elements but the source has 4/,
  );
});
