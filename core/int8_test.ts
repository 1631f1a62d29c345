import assert from "node:assert/strict";
import {
  decodeInt8,
  decodeInt8Array,
  dequantizeInt8PerTokenHead,
  encodeInt8,
  encodeInt8Array,
  quantizeInt8PerTokenHead,
} from "./int8.ts";
import { mulberry32 } from "./prng.ts";

/** Nearest integer by floor and comparison, ties to the even one. */
function roundHalfEven(y: number): number {
  const fl = Math.floor(y);
  const frac = y - fl;
  if (frac < 0.5) return fl;
  if (frac > 0.5) return fl + 1;
  return fl % 2 === 0 ? fl : fl + 1;
}

function reference(x: number, scale: number, zeroPoint: number): number {
  const y = Math.fround(Math.fround(x) / Math.fround(scale));
  if (Number.isNaN(y)) return zeroPoint;
  if (y === Infinity) return 127;
  if (y === -Infinity) return -128;
  return Math.min(127, Math.max(-128, roundHalfEven(y) + zeroPoint));
}

function fp16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  return e === 0
    ? sign * 2 ** -14 * (m / 1024)
    : sign * 2 ** (e - 15) * (1 + m / 1024);
}

const FP16_FINITE = new Float32Array(
  Array.from({ length: 65536 }, (_, h) => h).filter((h) =>
    (h & 0x7c00) !== 0x7c00
  ).map(fp16Value),
);

const CASES = [[1, 0], [0.0173, 0], [3.5, 0], [1 / 127, -7], [0.25, 100]];

Deno.test("encodeInt8() rounds half to even", () => {
  const cases = [
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [-0.5, 0],
    [-1.5, -2],
    [-2.5, -2],
    [0.49999997, 0],
    [126.5, 126],
    [-127.5, -128],
  ];
  for (const [x, q] of cases) assert.equal(encodeInt8(x, 1), q, `x=${x}`);
  assert.ok(Object.is(encodeInt8(-0.4, 1), 0)); // never -0
});

Deno.test("encodeInt8() clamps to -128..127, infinities included, and maps NaN to the zero point", () => {
  assert.equal(encodeInt8(127.5, 1), 127);
  assert.equal(encodeInt8(1e30, 1), 127);
  assert.equal(encodeInt8(-1e30, 1), -128);
  assert.equal(encodeInt8(Infinity, 0.5), 127);
  assert.equal(encodeInt8(-Infinity, 0.5), -128);
  assert.equal(encodeInt8(3e38, 1e-3), 127); // the fp32 division overflows
  assert.equal(encodeInt8(NaN, 1), 0);
  assert.equal(encodeInt8(NaN, 1, -9), -9);
});

Deno.test("encodeInt8() adds the zero point before clamping", () => {
  assert.equal(encodeInt8(0, 0.1, -5), -5);
  assert.equal(encodeInt8(1, 0.5, 10), 12);
  assert.equal(encodeInt8(120, 1, 10), 127);
  assert.equal(encodeInt8(-120, 1, -10), -128);
  assert.equal(decodeInt8(12, 0.5, 10), 1);
  assert.equal(decodeInt8(-128, 0.5, -128), 0);
});

Deno.test("encodeInt8() agrees with a floor-based reference on every finite fp16 value", () => {
  for (const [s, zp] of CASES) {
    const codes = encodeInt8Array(FP16_FINITE, s, zp);
    for (let i = 0; i < FP16_FINITE.length; i++) {
      const want = reference(FP16_FINITE[i], s, zp);
      const at = `x=${FP16_FINITE[i]} scale=${s} zp=${zp}`;
      assert.equal(encodeInt8(FP16_FINITE[i], s, zp), want, at);
      assert.equal(codes[i], want, `array ${at}`);
    }
  }
});

Deno.test("encodeInt8Array() matches encodeInt8() on random bit patterns", () => {
  const rand = mulberry32(5);
  const words = new Uint32Array(50000).map(() => Math.floor(rand() * 2 ** 32));
  const src = new Float32Array(words.buffer);
  for (let i = 0; i < 5000; i++) src[i] = (rand() - 0.5) * 300; // in range too
  for (const [s, zp] of CASES) {
    const codes = encodeInt8Array(src, s, zp);
    for (let i = 0; i < src.length; i++) {
      assert.equal(codes[i], encodeInt8(src[i], s, zp), `x=${src[i]}`);
    }
  }
});

Deno.test("decodeInt8Array() matches decodeInt8() on every code", () => {
  const codes = new Int8Array(256).map((_, i) => i - 128);
  for (const [s, zp] of CASES) {
    const out = decodeInt8Array(codes, s, zp);
    for (let i = 0; i < 256; i++) {
      const want = Math.fround((codes[i] - zp) * Math.fround(s));
      assert.equal(decodeInt8(codes[i], s, zp), want);
      assert.equal(out[i], want);
    }
  }
});

Deno.test("int8 array forms work on subarray views", () => {
  const src = new Float32Array([9, 1, -2, 0.5, 9]).subarray(1, 4);
  const dst = new Int8Array(6);
  encodeInt8Array(src, 0.5, 1, dst.subarray(2));
  assert.deepEqual([...dst], [0, 0, 3, -3, 2, 0]);
  const back = new Float32Array(5);
  decodeInt8Array(dst.subarray(2, 5), 0.5, 1, back.subarray(1));
  assert.deepEqual([...back], [0, 1, -2, 0.5, 0]);
});

Deno.test("int8 functions reject bad scales, zero points, codes and short destinations", () => {
  for (const s of [0, -1, NaN, Infinity, 1e-50]) {
    assert.throws(
      () => encodeInt8(1, s),
      /Invalid int8 scale .*: pass a positive finite/,
    );
    assert.throws(() => decodeInt8Array(new Int8Array(1), s), RangeError);
  }
  for (const zp of [-129, 128, 0.5, NaN]) {
    assert.throws(
      () => encodeInt8(1, 1, zp),
      /Invalid int8 zero point .*: pass an integer from -128 to 127/,
    );
    assert.throws(
      () => encodeInt8Array(new Float32Array(1), 1, zp),
      RangeError,
    );
  }
  for (const q of [-129, 128, 1.5, NaN]) {
    assert.throws(() => decodeInt8(q, 1), /Invalid int8 code/);
  }
  assert.throws(
    () => encodeInt8Array(new Float32Array(3), 1, 0, new Int8Array(2)),
    /Destination holds 2 elements but the source has 3/,
  );
});

Deno.test("quantizeInt8PerTokenHead() uses amax / 127 per head and encodes like encodeInt8()", () => {
  const [T, H, D] = [37, 3, 64];
  const rand = mulberry32(6);
  const src = new Float32Array(T * H * D).map((_, i) => {
    const magnitude = 2 ** ((Math.floor(i / D) % 17) - 8);
    return (rand() - 0.5) * magnitude;
  });
  const { codes, scales } = quantizeInt8PerTokenHead(src, T, H, D);
  assert.equal(scales.length, T * H);
  for (let r = 0; r < T * H; r++) {
    const row = src.subarray(r * D, (r + 1) * D);
    const amax = Math.max(...row.map(Math.abs));
    assert.equal(scales[r], Math.fround(amax / 127));
    for (let d = 0; d < D; d++) {
      assert.equal(codes[r * D + d], encodeInt8(row[d], scales[r]));
    }
  }
  const back = dequantizeInt8PerTokenHead(codes, scales, T, H, D);
  for (let i = 0; i < src.length; i++) {
    const s = scales[Math.floor(i / D)];
    assert.ok(
      Math.abs(back[i] - src[i]) <= (s / 2) * (1 + 2 ** -16),
      `element ${i}: |${back[i]} - ${src[i]}| > ${s / 2}`,
    );
  }
});

Deno.test("quantizeInt8PerTokenHead() gives scale 1 to an all-zero head and skips non-finite values", () => {
  const src = new Float32Array([0, 0, 0, 0, 1.27, Infinity, NaN, -Infinity]);
  const { codes, scales } = quantizeInt8PerTokenHead(src, 2, 1, 4);
  assert.deepEqual([...scales], [1, Math.fround(Math.fround(1.27) / 127)]);
  assert.deepEqual([...codes], [0, 0, 0, 0, 127, 127, 0, -128]);
  const tiny = quantizeInt8PerTokenHead(new Float32Array([1e-45, 0]), 1, 1, 2);
  assert.deepEqual([...tiny.scales], [1]);
});

Deno.test("quantizeInt8PerTokenHead() writes into caller buffers, subarrays included", () => {
  const codes = new Int8Array(10);
  const scales = new Float32Array(4);
  quantizeInt8PerTokenHead(new Float32Array([2, -1, 0.5, 0.25]), 1, 2, 2, {
    codes: codes.subarray(4, 8),
    scales: scales.subarray(2),
  });
  assert.deepEqual([...codes], [0, 0, 0, 0, 127, -64, 127, 64, 0, 0]);
  const out = new Float32Array(6);
  dequantizeInt8PerTokenHead(
    codes.subarray(4, 8),
    scales.subarray(2),
    1,
    2,
    2,
    out.subarray(1),
  );
  assert.equal(out[1], 2);
  assert.equal(out[3], 0.5);
});

Deno.test("quantizeInt8PerTokenHead() rejects shapes that do not match the buffers", () => {
  assert.throws(
    () => quantizeInt8PerTokenHead(new Float32Array(10), 2, 2, 2),
    /The src array has 10 elements but shape \[2, 2, 2\] needs 8/,
  );
  assert.throws(
    () => quantizeInt8PerTokenHead(new Float32Array(4), 1, -2, -2),
    /Invalid shape \[1, -2, -2\]/,
  );
  assert.throws(
    () =>
      dequantizeInt8PerTokenHead(
        new Int8Array(8),
        new Float32Array(3),
        2,
        2,
        2,
      ),
    /Destination holds 3 elements but the source has 4/,
  );
});
