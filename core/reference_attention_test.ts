import assert from "node:assert/strict";
import { planBatch } from "./batch.ts";
import type { LayerSpec } from "./layer.ts";
import { mulberry32 } from "./prng.ts";
import { referenceAttention } from "./reference_attention.ts";

function randn(rand: () => number, n: number): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = rand() * 2 - 1;
  return a;
}

function onePlan(qLens: number[], seqLens: number[]) {
  const starts = [0];
  for (const q of qLens) starts.push(starts.at(-1)! + q);
  const maxBlocks = Math.max(...seqLens.map((s) => Math.ceil(s / 16)));
  return planBatch({
    queryStartLoc: Int32Array.from(starts),
    seqLens: Int32Array.from(seqLens),
    blockTables: new Int32Array(qLens.length * maxBlocks),
    maxBlocksPerSeq: maxBlocks,
    blockSize: 16,
  });
}

const base: LayerSpec = {
  index: 0,
  kind: "full",
  numQHeads: 4,
  numKvHeads: 2,
  headDim: 8,
  scale: 8 ** -0.5,
};

Deno.test("referenceAttention() matches a hand-computed two-key softmax", () => {
  const layer = { ...base, numQHeads: 1, numKvHeads: 1, headDim: 2, scale: 1 };
  const batch = onePlan([1], [2]);
  const { out, lse } = referenceAttention(layer, {
    batch,
    query: Float64Array.of(1, 0),
    keys: [Float64Array.of(0, 0, 2, 0)],
    values: [Float64Array.of(1, 0, 0, 1)],
  });
  const w0 = 1 / (1 + Math.exp(2));
  assert.ok(Math.abs(out[0] - w0) < 1e-15);
  assert.ok(Math.abs(out[1] - (1 - w0)) < 1e-15);
  assert.ok(Math.abs(lse[0] - Math.log(1 + Math.exp(2))) < 1e-15);
});

Deno.test("referenceAttention() maps query heads to kv heads by group (GQA)", () => {
  // Each kv head's values are constant, so the output names the kv head read.
  const layer = { ...base, numQHeads: 4, numKvHeads: 2, headDim: 1, scale: 1 };
  const batch = onePlan([1], [3]);
  const v = new Float64Array(3 * 2);
  for (let j = 0; j < 3; j++) (v[j * 2] = 10, v[j * 2 + 1] = 20);
  const { out } = referenceAttention(layer, {
    batch,
    query: new Float64Array(4),
    keys: [new Float64Array(6)],
    values: [v],
  });
  assert.deepEqual([...out], [10, 10, 20, 20]);
});

Deno.test("referenceAttention() is causal inside a prefill and sees the whole context in decode", () => {
  const layer = { ...base, numQHeads: 1, numKvHeads: 1, headDim: 1, scale: 1 };
  const values = Float64Array.of(1, 2, 3, 4);
  const keys = new Float64Array(4);
  // Sequence 0 prefills 4 tokens; sequence 1 decodes its 4th token.
  const batch = onePlan([4, 1], [4, 4]);
  const { out } = referenceAttention(layer, {
    batch,
    query: new Float64Array(5),
    keys: [keys, keys],
    values: [values, values],
  });
  assert.deepEqual([...out], [1, 1.5, 2, 2.5, 2.5]);
});

Deno.test("referenceAttention() limits a sliding window to W tokens, itself included", () => {
  const layer: LayerSpec = {
    ...base,
    kind: "sliding_window",
    slidingWindow: 2,
    numQHeads: 1,
    numKvHeads: 1,
    headDim: 1,
    scale: 1,
  };
  const batch = onePlan([4], [4]);
  const { out } = referenceAttention(layer, {
    batch,
    query: new Float64Array(4),
    keys: [new Float64Array(4)],
    values: [Float64Array.of(1, 2, 3, 4)],
  });
  assert.deepEqual([...out], [1, 1.5, 2.5, 3.5]);
});

Deno.test("referenceAttention() applies the soft-cap as c * tanh(x / c)", () => {
  const layer = {
    ...base,
    numQHeads: 1,
    numKvHeads: 1,
    headDim: 1,
    scale: 1,
    softCap: 2,
  };
  const batch = onePlan([1], [2]);
  const { out } = referenceAttention(layer, {
    batch,
    query: Float64Array.of(1),
    keys: [Float64Array.of(0, 10)],
    values: [Float64Array.of(0, 1)],
  });
  const capped = 2 * Math.tanh(10 / 2);
  const want = Math.exp(capped) / (1 + Math.exp(capped));
  assert.ok(Math.abs(out[0] - want) < 1e-15, `${out[0]} vs ${want}`);
});

Deno.test("referenceAttention() equals a direct softmax formula on random mixed batches", () => {
  const rand = mulberry32(7);
  const layer = base;
  const qLens = [1, 5, 1, 17];
  const seqLens = [9, 5, 33, 40];
  const batch = onePlan(qLens, seqLens);
  const row = layer.numKvHeads * layer.headDim;
  const keys = seqLens.map((n) => randn(rand, n * row));
  const values = seqLens.map((n) => randn(rand, n * row));
  const query = randn(rand, batch.numTokens * layer.numQHeads * layer.headDim);
  const { out } = referenceAttention(layer, { batch, query, keys, values });
  // Written differently: build the full weight vector with exp of raw
  // logits (no max subtraction; inputs are small), then normalise.
  for (let t = 0; t < batch.numTokens; t++) {
    const s = batch.tokenSeq[t], pos = batch.tokenPos[t];
    for (let h = 0; h < layer.numQHeads; h++) {
      const kvh = h >> 1;
      const w: number[] = [];
      for (let j = 0; j <= pos; j++) {
        let dot = 0;
        for (let d = 0; d < layer.headDim; d++) {
          dot += query[(t * 4 + h) * 8 + d] * keys[s][j * row + kvh * 8 + d];
        }
        w.push(Math.exp(dot * layer.scale));
      }
      const z = w.reduce((a, b) => a + b, 0);
      for (let d = 0; d < layer.headDim; d++) {
        let acc = 0;
        for (let j = 0; j <= pos; j++) {
          acc += (w[j] / z) * values[s][j * row + kvh * 8 + d];
        }
        const got = out[(t * 4 + h) * 8 + d];
        assert.ok(
          Math.abs(got - acc) < 1e-12,
          `t=${t} h=${h} d=${d}: ${got} vs ${acc}`,
        );
      }
    }
  }
});

Deno.test("referenceAttention() rejects K/V whose length does not match seqLens", () => {
  const batch = onePlan([1], [3]);
  assert.throws(
    () =>
      referenceAttention(base, {
        batch,
        query: new Float64Array(4 * 8),
        keys: [new Float64Array(2 * 16)],
        values: [new Float64Array(3 * 16)],
      }),
    /keys\[0\] and values\[0\] must have seqLens\[0\]/,
  );
});
