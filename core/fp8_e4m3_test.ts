import assert from "node:assert/strict";
import {
  decodeFp8E4m3,
  decodeFp8E4m3Array,
  encodeFp8E4m3,
  encodeFp8E4m3Array,
} from "./fp8_e4m3.ts";
import { mulberry32 } from "./prng.ts";

// An independent model of the format: the OCP formula, a table of the
// positive finite values, and nearest-value search with ties to the even code.
function formula(code: number): number {
  const sign = code & 0x80 ? -1 : 1;
  const e = (code >> 3) & 0xf;
  const m = code & 7;
  if (e === 15 && m === 7) return NaN;
  if (e === 0) return sign * Math.pow(2, 1 - 7) * (m / 8);
  return sign * Math.pow(2, e - 7) * (1 + m / 8);
}

const POSITIVE = Array.from({ length: 0x7f }, (_, c) => formula(c)); // 0 .. 448

function reference(x: number, scale = 1): number {
  const y = Math.fround(Math.fround(x) / Math.fround(scale));
  if (Number.isNaN(y)) return 0x7f;
  const sign = y < 0 || Object.is(y, -0) ? 0x80 : 0;
  const a = Math.abs(y);
  if (a >= 448) return sign | 0x7e;
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
  )
    .map(fp16Value),
);

const SCALES = [1, 0.0173, 3.5, 2 ** -7, 1 / 3];

Deno.test("decodeFp8E4m3() maps all 256 codes to their OCP E4M3FN values", () => {
  for (let c = 0; c < 256; c++) {
    assert.ok(
      Object.is(decodeFp8E4m3(c), formula(c)),
      `code 0x${c.toString(16)}`,
    );
  }
  assert.equal(decodeFp8E4m3(0x7e), 448);
  assert.equal(decodeFp8E4m3(0xfe), -448);
  assert.equal(decodeFp8E4m3(0x01), 2 ** -9);
  assert.equal(decodeFp8E4m3(0x08), 2 ** -6);
  assert.equal(decodeFp8E4m3(0x38), 1);
  assert.ok(Object.is(decodeFp8E4m3(0x80), -0));
  assert.ok(
    Number.isNaN(decodeFp8E4m3(0x7f)) && Number.isNaN(decodeFp8E4m3(0xff)),
  );
});

Deno.test("decodeFp8E4m3() multiplies by the scale in fp32", () => {
  for (const s of SCALES) {
    for (let c = 0; c < 256; c++) {
      assert.ok(
        Object.is(
          decodeFp8E4m3(c, s),
          Math.fround(formula(c) * Math.fround(s)),
        ),
      );
    }
  }
});

Deno.test("encodeFp8E4m3() agrees with a nearest-value search on every finite fp16 value", () => {
  for (const s of SCALES) {
    const codes = encodeFp8E4m3Array(FP16_FINITE, s);
    for (let i = 0; i < FP16_FINITE.length; i++) {
      const want = reference(FP16_FINITE[i], s);
      assert.equal(
        encodeFp8E4m3(FP16_FINITE[i], s),
        want,
        `x=${FP16_FINITE[i]} scale=${s}`,
      );
      assert.equal(codes[i], want, `array x=${FP16_FINITE[i]} scale=${s}`);
    }
  }
});

Deno.test("encodeFp8E4m3() rounds ties to the even code", () => {
  assert.equal(encodeFp8E4m3(17), 0x58); // 16 | 18
  assert.equal(encodeFp8E4m3(19), 0x5a); // 18 | 20
  assert.equal(encodeFp8E4m3(1 + 1 / 16), 0x38);
  assert.equal(encodeFp8E4m3(-(1 + 3 / 16)), 0xba);
  assert.equal(encodeFp8E4m3(432), 0x7e); // 416 | 448
  // Subnormals: half the smallest subnormal goes to zero, keeping the sign.
  assert.equal(encodeFp8E4m3(2 ** -10), 0x00);
  assert.equal(encodeFp8E4m3(-(2 ** -10)), 0x80);
  assert.equal(encodeFp8E4m3(2 ** -10 * 1.001), 0x01);
  assert.equal(encodeFp8E4m3(3 * 2 ** -10), 0x02);
  assert.equal(encodeFp8E4m3(5 * 2 ** -10), 0x02);
  assert.equal(encodeFp8E4m3(15 * 2 ** -10), 0x08); // 7 | 8 across the normal boundary
});

Deno.test("encodeFp8E4m3() saturates magnitudes above 448, infinities included", () => {
  for (const x of [448, 449, 463.9, 464, 480, 1e6, 3.4e38, Infinity]) {
    assert.equal(encodeFp8E4m3(x), 0x7e, `x=${x}`);
    assert.equal(encodeFp8E4m3(-x), 0xfe, `x=${-x}`);
  }
  assert.equal(encodeFp8E4m3(1, 2 ** -120), 0x7e); // 2^120 is finite in fp32
  assert.equal(encodeFp8E4m3(3e38, 2 ** -20), 0x7e); // the fp32 division overflows to inf
});

Deno.test("encodeFp8E4m3() keeps -0 and turns NaN into 0x7f", () => {
  assert.equal(encodeFp8E4m3(-0), 0x80);
  assert.equal(encodeFp8E4m3(0), 0x00);
  assert.equal(encodeFp8E4m3(-1e-30), 0x80);
  assert.equal(encodeFp8E4m3(NaN), 0x7f);
  assert.equal(encodeFp8E4m3(-NaN, 3.5), 0x7f);
  const nans = new Float32Array(
    new Uint32Array([0x7fc00000, 0xffc00000, 0x7f800001]).buffer,
  );
  assert.deepEqual([...encodeFp8E4m3Array(nans, 1)], [0x7f, 0x7f, 0x7f]);
});

Deno.test("encodeFp8E4m3() divides by the scale rounded to fp32, as kernels do", () => {
  // With the float64 scale the quotient lands just above the 7.5 tie and
  // would round to 8; the fp32 division (what kernels compute) lands on 7.5.
  const x = Math.fround(0.00025341796572320163);
  assert.equal(encodeFp8E4m3(Math.fround(x / 0.0173)), 0x08);
  assert.equal(encodeFp8E4m3(x, 0.0173), 0x07);
  assert.equal(encodeFp8E4m3(x, Math.fround(0.0173)), 0x07);
  // Near every tie, scalar and array agree with the reference.
  const f = new Float32Array(1);
  const bits = new Uint32Array(f.buffer);
  for (const s of SCALES) {
    for (let c = 0; c < 0x7e; c++) {
      f[0] = ((POSITIVE[c] + POSITIVE[c + 1]) / 2) * s;
      const base = bits[0];
      for (let d = -2; d <= 2; d++) {
        bits[0] = base + d;
        assert.equal(encodeFp8E4m3(f[0], s), reference(f[0], s));
        assert.equal(encodeFp8E4m3Array(f, s)[0], reference(f[0], s));
      }
    }
  }
});

Deno.test("encodeFp8E4m3Array() matches encodeFp8E4m3() on random bit patterns", () => {
  const rand = mulberry32(1);
  const bits = new Uint32Array(50000).map(() => Math.floor(rand() * 2 ** 32));
  const src = new Float32Array(bits.buffer);
  for (const s of SCALES) {
    const codes = encodeFp8E4m3Array(src, s);
    for (let i = 0; i < src.length; i++) {
      assert.equal(
        codes[i],
        encodeFp8E4m3(src[i], s),
        `bits=0x${bits[i].toString(16)}`,
      );
    }
  }
});

Deno.test("decodeFp8E4m3Array() matches decodeFp8E4m3() for every code", () => {
  const codes = new Uint8Array(256).map((_, i) => i);
  for (const s of SCALES) {
    const out = decodeFp8E4m3Array(codes, s);
    for (let c = 0; c < 256; c++) {
      assert.ok(Object.is(out[c], decodeFp8E4m3(c, s)));
    }
  }
});

Deno.test("encodeFp8E4m3Array() writes into subarray views and longer destinations", () => {
  const src = new Float32Array([0, 1, 2, 3, 4, 5, 6]).subarray(2, 5);
  const dst = new Uint8Array(10);
  encodeFp8E4m3Array(src, 1, dst.subarray(4));
  assert.deepEqual([...dst], [0, 0, 0, 0, 0x40, 0x44, 0x48, 0, 0, 0]);
  const back = new Float32Array(5);
  decodeFp8E4m3Array(dst.subarray(4, 7), 1, back.subarray(1));
  assert.deepEqual([...back], [0, 2, 3, 4, 0]);
});

Deno.test("fp8_e4m3 functions reject bad scales, codes and short destinations", () => {
  for (const s of [0, -1, NaN, Infinity, 1e-50]) {
    assert.throws(
      () => encodeFp8E4m3(1, s),
      /Invalid fp8_e4m3 scale .*: pass a positive finite/,
    );
    assert.throws(() => encodeFp8E4m3Array(new Float32Array(1), s), RangeError);
    assert.throws(() => decodeFp8E4m3Array(new Uint8Array(1), s), RangeError);
  }
  for (const c of [-1, 256, 1.5, NaN]) {
    assert.throws(() => decodeFp8E4m3(c), /Invalid fp8_e4m3 code/);
  }
  assert.throws(
    () => encodeFp8E4m3Array(new Float32Array(4), 1, new Uint8Array(3)),
    /Destination holds 3 elements but the source has 4/,
  );
  assert.throws(
    () => decodeFp8E4m3Array(new Uint8Array(4), 1, new Float32Array(2)),
    RangeError,
  );
});
