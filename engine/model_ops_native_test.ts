// The native matmul on every kernel path this CPU has, with f32 and bf16
// weights, against an fp64 oracle (fed the bf16-rounded weights for bf16)
// on random shapes (odd sizes, several k blocks, several row chunks, wide
// decode tiles, the threaded and the single-thread paths), with the error
// bound of f32 summation; avx2 and avx512 must agree bit for bit (one FMA
// chain per output, in k order). A path this CPU lacks is ignored with the reason.
import assert from "node:assert/strict";
import { decodeBf16, encodeBf16 } from "../core/bf16.ts";
import { mulberry32 } from "../core/prng.ts";
import {
  KERNEL_PATHS,
  type KernelPathName,
  probeNativeAddon,
} from "../native/mod.ts";
import { createNativeOps, nativeOpsUnavailable } from "./model_ops_native.ts";
import { typescriptOps } from "./model_ops_typescript.ts";

const probe = probeNativeAddon();
const SKIP = !probe.available
  ? probe.reason
  : nativeOpsUnavailable(probe.addon);
const best = probe.available ? probe.addon.kernelSelection().best : "scalar";

function nativeTest(name: string, fn: () => void, path?: KernelPathName) {
  const lacks = path && KERNEL_PATHS.indexOf(path) > KERNEL_PATHS.indexOf(best)
    ? `this CPU's best path is ${best}`
    : undefined;
  const skip = SKIP ?? lacks;
  Deno.test({
    name: skip ? `${name} (ignored: ${skip})` : name,
    ignore: skip !== undefined,
    fn,
  });
}

function random(n: number, rand: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => 2 * rand() - 1);
}

// [m, n, k]: 1x1x1; one partial panel; a two-panel tile whose second panel
// is missing; k over one 256-step block; m over one 96-row chunk; the demo
// model's lm_head and MLP shapes ([64, 512, 256] is spread over the pool:
// m n k >= 2^20).
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 17, 3],
  [7, 33, 5],
  [5, 48, 64],
  [13, 50, 300],
  [97, 31, 257],
  [3, 259, 256],
  [64, 512, 256],
  [2, 256, 512],
  // Decode's wide tiles (one or two rows): whole, cut by the right edge,
  // over several k blocks, and spread over the pool (m n k >= 2^20).
  [1, 300, 40],
  [2, 145, 300],
  [1, 1100, 1000],
];

interface Case {
  m: number;
  n: number;
  k: number;
  x: Float32Array;
  w: Float32Array;
  bias?: Float32Array;
}

function cases(): Case[] {
  const rand = mulberry32(42);
  return SHAPES.map(([m, n, k], i) => ({
    m,
    n,
    k,
    x: random(m * k, rand),
    w: random(n * k, rand),
    bias: i % 2 ? random(n, rand) : undefined,
  }));
}

/** Max of |got - exact| / bound, where bound is f32 summation's error bound. */
function worstError(c: Case, got: Float32Array): number {
  const u = 2 ** -24;
  let worst = 0;
  for (let i = 0; i < c.m; i++) {
    for (let j = 0; j < c.n; j++) {
      let exact = 0, abs = 0;
      for (let t = 0; t < c.k; t++) {
        const p = c.x[i * c.k + t] * c.w[j * c.k + t];
        exact += p;
        abs += Math.abs(p);
      }
      const b = c.bias ? c.bias[j] : 0;
      // k roundings of running sums (plus the products' on scalar), then
      // the bias add and the final store.
      const bound = (c.k + 1) * u * abs + 2 * u * Math.abs(exact + b) + 1e-30;
      worst = Math.max(worst, Math.abs(got[i * c.n + j] - (exact + b)) / bound);
    }
  }
  return worst;
}

/** The weights as bf16 stores them: the oracle's input for bf16 packing. */
function roundedToBf16(w: Float32Array): Float32Array {
  return Float32Array.from(w, (v) => decodeBf16(encodeBf16(v)));
}

for (const path of KERNEL_PATHS) {
  for (const weightDtype of ["f32", "bf16"] as const) {
    nativeTest(
      `native matmul on ${path} with ${weightDtype} weights matches the fp64 oracle on odd shapes`,
      () => {
        const ops = createNativeOps(
          probe.available ? probe.addon : never(),
          { kernelPath: path, weightDtype },
        );
        for (const c of cases()) {
          const packed = ops.pack({ data: c.w, rows: c.n, cols: c.k });
          assert.equal(
            packed.data instanceof Uint16Array,
            weightDtype === "bf16",
          );
          const out = new Float32Array(c.m * c.n).fill(NaN);
          ops.matmul(c.x, packed, { bias: c.bias, out });
          const w = weightDtype === "bf16" ? roundedToBf16(c.w) : c.w;
          const err = worstError({ ...c, w }, out);
          assert.ok(
            err <= 1,
            `[${c.m}, ${c.n}, ${c.k}] on ${path}: error ${err} x the f32 bound`,
          );
        }
      },
      path,
    );
  }
}

nativeTest(
  "native matmul gives identical bits on avx2 and avx512, and at any thread split",
  () => {
    const addon = probe.available ? probe.addon : never();
    const run = (path: KernelPathName, weightDtype: "f32" | "bf16") => {
      const ops = createNativeOps(addon, { kernelPath: path, weightDtype });
      return cases().map((c) =>
        ops.matmul(c.x, ops.pack({ data: c.w, rows: c.n, cols: c.k }), {
          bias: c.bias,
        })
      );
    };
    for (const dtype of ["bf16", "f32"] as const) {
      const a = run("avx2", dtype), b = run("avx512", dtype);
      a.forEach((out, i) =>
        assert.deepEqual(out, b[i], `shape ${SHAPES[i]}, ${dtype} weights`)
      );
    }
    const b = run("avx512", "f32");
    // One row at a time (never threaded) equals the whole batch (threaded).
    const c = cases()[7];
    const ops = createNativeOps(addon, { kernelPath: "avx512" });
    const packed = ops.pack({ data: c.w, rows: c.n, cols: c.k });
    for (const i of [0, 33, 63]) {
      const row = ops.matmul(c.x.subarray(i * c.k, (i + 1) * c.k), packed, {
        bias: c.bias,
      });
      assert.deepEqual(row, b[7].subarray(i * c.n, (i + 1) * c.n));
    }
  },
  "avx512",
);

nativeTest("native matmul refuses bad inputs, naming the problem", () => {
  const ops = createNativeOps(probe.available ? probe.addon : never());
  const w = ops.pack({ data: new Float32Array(6), rows: 3, cols: 2 });
  const x = new Float32Array(4);
  assert.throws(() => ops.matmul(new Float32Array(3), w), /not a multiple/);
  assert.throws(
    () => ops.matmul(x, w, { out: new Float32Array(5) }),
    /out has 5 elements, expected 2 x 3/,
  );
  assert.throws(
    () => ops.matmul(x, w, { bias: new Float32Array(2) }),
    /bias has 2 elements, expected 3/,
  );
  const shared = new Float32Array(10);
  assert.throws(
    () => ops.matmul(shared.subarray(0, 4), w, { out: shared.subarray(2, 8) }),
    /out must not share memory with x/,
  );
  assert.throws(
    () => ops.matmul(x, { ...w, data: new Float32Array(6) }),
    /packed weight has 6 elements, expected 32 for \[3, 2\]/,
  );
  const foreign = typescriptOps.pack({
    data: new Float32Array(6),
    rows: 3,
    cols: 2,
  });
  assert.throws(() => ops.matmul(x, foreign), /packed by the typescript ops/);
});

function never(): never {
  throw new Error("unreachable: the test is ignored without the addon");
}
