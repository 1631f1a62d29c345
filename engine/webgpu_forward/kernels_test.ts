// Each WGSL op of the WebGPU forward pass against its TypeScript oracle
// (engine/ops.ts, engine/matmul.ts, engine/rope.ts), on shapes that are
// not multiples of the kernels' tiles. Error is max |gpu - ts| / max |ts|;
// without a WebGPU adapter every test is ignored and says why.
import assert from "node:assert/strict";
import { mulberry32 } from "../../core/prng.ts";
import {
  createBufferFrom,
  probeWebGpu,
  readBuffer,
  Submission,
} from "../../webgpu/mod.ts";
import { matmul } from "../matmul.ts";
import { addInPlace, gatedActivation, rmsNorm, softcap } from "../ops.ts";
import { applyRope, ropeTable } from "../rope.ts";
import { ForwardKernels } from "./kernels.ts";

const probe = await probeWebGpu();
const SKIP = probe.available ? undefined : probe.reason;

function test(name: string, fn: (k: ForwardKernels) => Promise<void>) {
  Deno.test({
    name: SKIP ? `${name} (ignored: ${SKIP})` : name,
    ignore: SKIP !== undefined,
    async fn() {
      const device = (probe as { device: GPUDevice }).device;
      await fn(await ForwardKernels.create(device));
    },
  });
}

const USAGE = 0x80 | 0x4; // STORAGE | COPY_SRC

function upload(k: ForwardKernels, data: Float32Array | Int32Array) {
  return createBufferFrom(k.device, data, USAGE);
}

async function download(k: ForwardKernels, b: GPUBuffer, n: number) {
  return new Float32Array(await readBuffer(k.device, b, 0, n * 4));
}

/** Records with `record`, submits, and reads `n` floats of `out`. */
async function run(
  k: ForwardKernels,
  out: GPUBuffer,
  n: number,
  record: (job: Submission) => void,
): Promise<Float32Array> {
  const job = new Submission(k.device);
  record(job);
  return new Float32Array(await job.read(out, 0, n * 4));
}

function random(n: number, seed: number, scale = 1): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
}

function relError(got: Float32Array, want: Float32Array): number {
  assert.equal(got.length, want.length);
  let diff = 0, max = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    max = Math.max(max, Math.abs(want[i]));
  }
  return diff / max;
}

test("embed() gathers rows and scales them exactly as the oracle", async (k) => {
  const [vocab, hidden] = [37, 100];
  const embed = random(vocab * hidden, 1);
  const tokens = Int32Array.of(3, 0, 36, 3, 17);
  const scale = Math.fround(Math.sqrt(hidden));
  const out = upload(k, new Float32Array(tokens.length * hidden));
  const got = await run(k, out, tokens.length * hidden, (job) =>
    k.embed(job, {
      tokens: upload(k, tokens),
      embed: upload(k, embed),
      out,
      numTokens: tokens.length,
      hidden,
      scale,
    }));
  const want = Float32Array.from(
    { length: tokens.length * hidden },
    (_, i) =>
      embed[tokens[Math.floor(i / hidden)] * hidden + (i % hidden)] * scale,
  );
  assert.deepEqual([...got], [...want]);
});

for (const addOne of [false, true]) {
  test(`rmsNorm() matches the oracle (addOne ${addOne}; plain, gathered, accumulated)`, async (k) => {
    const [rows, dim] = [5, 200];
    const x = random(rows * dim, 2, 3);
    const w = random(dim, 3);
    const opts = { eps: 1e-6, addOne };
    const args = {
      src: upload(k, x),
      weight: upload(k, w),
      dim,
      ...opts,
    };
    const plainOut = upload(k, new Float32Array(rows * dim));
    const plain = await run(
      k,
      plainOut,
      rows * dim,
      (job) => k.rmsNorm(job, { ...args, dst: plainOut, numRows: rows }),
    );
    const want = rmsNorm(x, w, opts);
    const e1 = relError(plain, want);
    assert.ok(e1 <= 2e-6, `plain: relative error ${e1}`);

    const pick = Int32Array.of(4, 0, 4);
    const gatheredOut = upload(k, new Float32Array(pick.length * dim));
    const gathered = await run(
      k,
      gatheredOut,
      pick.length * dim,
      (job) =>
        k.rmsNorm(job, {
          ...args,
          dst: gatheredOut,
          numRows: pick.length,
          gather: upload(k, pick),
        }),
    );
    const wantRows = Float32Array.from(
      [...pick].flatMap((r) => [...want.subarray(r * dim, (r + 1) * dim)]),
    );
    const e2 = relError(gathered, wantRows);
    assert.ok(e2 <= 2e-6, `gathered: relative error ${e2}`);

    const base = random(rows * dim, 4);
    const accOut = upload(k, base);
    const acc = await run(
      k,
      accOut,
      rows * dim,
      (job) =>
        k.rmsNorm(job, {
          ...args,
          dst: accOut,
          numRows: rows,
          accumulate: true,
        }),
    );
    const e3 = relError(acc, addInPlace(base.slice(), want));
    assert.ok(e3 <= 2e-6, `accumulated: relative error ${e3}`);
  });
}

test("rope() rotates every head as applyRope does, far positions included", async (k) => {
  const positions = Int32Array.of(0, 7, 1000, 123456);
  const [heads, headDim] = [3, 16];
  const table = ropeTable(positions, {
    theta: 10000,
    scaling: { type: "default" },
  }, headDim);
  const x = random(positions.length * heads * headDim, 5);
  const buf = upload(k, x);
  const got = await run(k, buf, x.length, (job) =>
    k.rope(job, {
      x: buf,
      cos: upload(k, table.cos),
      sin: upload(k, table.sin),
      numTokens: positions.length,
      rowSize: heads * headDim,
      headDim,
    }));
  const err = relError(got, applyRope(x.slice(), table));
  assert.ok(err <= 1e-6, `relative error ${err}`);
});

// [1, *, 100] runs the one-row kernel; [1, *, 67] (k not a multiple of 4)
// and the others the tiled one.
const SHAPES: [number, number, number][] = [
  [1, 70, 100],
  [1, 70, 67],
  [13, 130, 67],
  [9, 64, 32],
];
for (const [n, m, kk] of SHAPES) {
  for (const withBias of [false, true]) {
    for (const cap of [0, 3]) {
      test(`matmul() [${n}, ${kk}] x [${m}, ${kk}]^T matches the oracle (bias ${withBias}, softcap ${cap})`, async (k) => {
        const x = random(n * kk, 6), w = random(m * kk, 7);
        const bias = withBias ? random(m, 8) : undefined;
        const out = upload(k, new Float32Array(n * m));
        const got = await run(k, out, n * m, (job) =>
          k.matmul(job, {
            x: upload(k, x),
            weight: upload(k, w),
            bias: bias && upload(k, bias),
            out,
            n,
            m,
            k: kk,
            softcap: cap || undefined,
          }));
        let want = matmul(x, { data: w, rows: m, cols: kk }, { bias });
        if (cap) want = softcap(want, cap);
        const err = relError(got, want);
        assert.ok(err <= 1e-5, `relative error ${err}`);
      });
    }
  }
}

for (const activation of ["silu", "gelu_tanh"] as const) {
  test(`gatedActivation() matches the oracle (${activation}, large |x| included)`, async (k) => {
    const gate = random(300, 9, 8);
    gate.set([100, -100, 1e6, -1e6, 0]);
    const up = random(300, 10);
    const buf = upload(k, gate);
    const got = await run(k, buf, gate.length, (job) =>
      k.gatedActivation(job, {
        gate: buf,
        up: upload(k, up),
        count: gate.length,
        activation,
      }));
    const want = gatedActivation(gate.slice(), up, activation);
    assert.ok(got.every(Number.isFinite), "non-finite output");
    const err = relError(got, want);
    assert.ok(err <= 2e-6, `relative error ${err}`);
  });
}

test("add() is the oracle's residual add, exactly", async (k) => {
  const x = random(1000, 11), y = random(1000, 12);
  const buf = upload(k, x);
  const got = await run(
    k,
    buf,
    x.length,
    (job) => k.add(job, { x: buf, y: upload(k, y), count: x.length }),
  );
  assert.deepEqual([...got], [...addInPlace(x.slice(), y)]);
  assert.ok((await download(k, buf, 1)).length === 1);
});
