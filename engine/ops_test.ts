import assert from "node:assert/strict";
import { mulberry32 } from "../core/prng.ts";
import { matmul } from "./matmul.ts";
import {
  addInPlace,
  gatedActivation,
  geluTanh,
  rmsNorm,
  silu,
  softcap,
} from "./ops.ts";
import { applyRope, ropeTable } from "./rope.ts";

const rand = mulberry32(7);
const randoms = (n: number) =>
  Float32Array.from({ length: n }, () => rand() * 2 - 1);

Deno.test("matmul() equals the naive triple loop for odd sizes, with and without bias", () => {
  for (
    const [n, m, k] of [[1, 1, 1], [5, 3, 7], [33, 9, 13], [2, 4, 6], [
      70,
      5,
      64,
    ]]
  ) {
    const x = randoms(n * k), w = randoms(m * k), bias = randoms(m);
    const y = matmul(x, { data: w, rows: m, cols: k }, { bias });
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) {
        let s = bias[j];
        for (let t = 0; t < k; t++) s += x[i * k + t] * w[j * k + t];
        assert.ok(
          Math.abs(y[i * m + j] - s) <= 1e-6 * (1 + Math.abs(s)),
          `[${n},${m},${k}] (${i},${j}): ${y[i * m + j]} vs ${s}`,
        );
      }
    }
  }
});

Deno.test("matmul() refuses shapes that do not fit, naming both", () => {
  const w = { data: new Float32Array(6), rows: 2, cols: 3 };
  assert.throws(
    () => matmul(new Float32Array(4), w),
    /x has 4 elements, not a multiple of the weight's 3 columns/,
  );
  assert.throws(
    () => matmul(new Float32Array(3), w, { out: new Float32Array(3) }),
    /out has 3 elements, expected 1 x 2 = 2/,
  );
  assert.throws(
    () => matmul(new Float32Array(3), { ...w, rows: 3 }),
    /weight has 6 elements but claims shape \[3, 3\]/,
  );
});

Deno.test("rmsNorm() normalizes each row and scales by w or by (1 + w)", () => {
  const x = Float32Array.of(1, 2, 3, 4, -4, -3, -2, -1);
  const w = Float32Array.of(0.5, 1, 1.5, 2);
  const llama = rmsNorm(x, w, { eps: 1e-6 });
  const gemma = rmsNorm(x, w, { eps: 1e-6, addOne: true });
  for (let r = 0; r < 2; r++) {
    const row = [...x.subarray(r * 4, r * 4 + 4)];
    const rms = Math.sqrt(row.reduce((a, v) => a + v * v, 0) / 4 + 1e-6);
    row.forEach((v, i) => {
      assert.ok(Math.abs(llama[r * 4 + i] - (v / rms) * w[i]) < 1e-6);
      assert.ok(Math.abs(gemma[r * 4 + i] - (v / rms) * (1 + w[i])) < 1e-6);
    });
  }
  const inPlace = Float32Array.from(x);
  rmsNorm(inPlace, w, { eps: 1e-6, out: inPlace });
  assert.deepEqual(inPlace, llama);
  assert.throws(
    () => rmsNorm(new Float32Array(5), w, { eps: 0 }),
    /not a multiple of the weight's 4/,
  );
});

Deno.test("applyRope() keeps norms, and q.k after RoPE depends only on the distance", () => {
  const rope = { theta: 10000, scaling: { type: "default" } } as const;
  const headDim = 16;
  const q = randoms(headDim), k = randoms(headDim);
  const dotAt = (pq: number, pk: number) => {
    const table = ropeTable(Int32Array.of(pq, pk), rope, headDim);
    const both = new Float32Array(2 * headDim);
    both.set(q);
    both.set(k, headDim);
    applyRope(both, table);
    let d = 0, nq = 0;
    for (let i = 0; i < headDim; i++) {
      d += both[i] * both[headDim + i];
      nq += both[i] * both[i];
    }
    return { d, nq };
  };
  const base = dotAt(3, 1), shifted = dotAt(103, 101);
  assert.ok(Math.abs(base.d - shifted.d) < 1e-4, `${base.d} vs ${shifted.d}`);
  const norm = q.reduce((a, v) => a + v * v, 0);
  assert.ok(Math.abs(base.nq - norm) < 1e-5);
});

Deno.test("applyRope() rotates pairs (i, i + d/2), the rotate_half layout", () => {
  const rope = { theta: 10000, scaling: { type: "default" } } as const;
  const table = ropeTable(Int32Array.of(1), rope, 4); // angles 1 and 0.01
  const x = applyRope(Float32Array.of(1, 0, 0, 0), table);
  const f = Math.fround;
  assert.deepEqual([...x], [f(Math.cos(1)), 0, f(Math.sin(1)), 0]);
  assert.throws(
    () => ropeTable(Int32Array.of(0), rope, 3),
    /even head dim, got 3/,
  );
});

Deno.test("activations match their definitions; softcap and addInPlace work in place", () => {
  assert.ok(Math.abs(silu(2) - 2 / (1 + Math.exp(-2))) < 1e-15);
  // PyTorch: F.gelu(torch.tensor([-1., 0.5, 3.], dtype=torch.float64), approximate="tanh")
  const torch = [-0.15880800939172324, 0.34571400982514394, 2.996362607918227];
  [-1, 0.5, 3].forEach((v, i) =>
    assert.ok(Math.abs(geluTanh(v) - torch[i]) < 1e-14)
  );
  const gate = gatedActivation(
    Float32Array.of(-1, 3),
    Float32Array.of(2, 0.5),
    "gelu_tanh",
  );
  assert.deepEqual([...gate], [
    Math.fround(2 * geluTanh(-1)),
    Math.fround(0.5 * geluTanh(3)),
  ]);
  assert.deepEqual([...softcap(Float32Array.of(30, -30), 30)], [
    Math.fround(30 * Math.tanh(1)),
    Math.fround(-30 * Math.tanh(1)),
  ]);
  assert.deepEqual([
    ...addInPlace(Float32Array.of(1, 2), Float32Array.of(3, 4)),
  ], [4, 6]);
  assert.throws(
    () => addInPlace(new Float32Array(1), new Float32Array(2)),
    /lengths differ: 1 and 2/,
  );
});
