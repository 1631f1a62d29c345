import assert from "node:assert/strict";
import { Sampler } from "./sampler.ts";
import { samplingParams } from "./sampling_params.ts";

const logits = Float32Array.of(2, 1, 0, -1, 0.5);

function histogram(params: Parameters<typeof samplingParams>[0], n = 20000) {
  const s = new Sampler(samplingParams({ seed: 1, ...params }));
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[s.sample(logits)]++;
  return counts.map((c) => c / n);
}

Deno.test("Sampler.sample() at temperature 1 follows softmax(logits)", () => {
  const z = [...logits].reduce((a, x) => a + Math.exp(x), 0);
  histogram({}).forEach((f, i) => {
    const p = Math.exp(logits[i]) / z;
    assert.ok(Math.abs(f - p) < 0.015, `token ${i}: ${f} vs ${p}`);
  });
});

Deno.test("Sampler.sample() with top_k keeps only the k most likely tokens", () => {
  const f = histogram({ topK: 2 });
  assert.equal(f[2] + f[3] + f[4], 0);
  const p0 = Math.exp(2) / (Math.exp(2) + Math.exp(1));
  assert.ok(Math.abs(f[0] - p0) < 0.015);
});

Deno.test("Sampler.sample() with top_p keeps the smallest set reaching p", () => {
  // softmax: 0.53, 0.19, 0.07, 0.03, 0.12 -> {0} has 0.53 < 0.6, {0, 1} reaches it.
  const f = histogram({ topP: 0.6 });
  assert.deepEqual(f.map((x) => x > 0), [true, true, false, false, false]);
});

Deno.test("Sampler.sample() repeats itself for the same seed", () => {
  const a = new Sampler(samplingParams({ seed: 42 }));
  const b = new Sampler(samplingParams({ seed: 42 }));
  const seqA = Array.from({ length: 50 }, () => a.sample(logits));
  const seqB = Array.from({ length: 50 }, () => b.sample(logits));
  assert.deepEqual(seqA, seqB);
});

Deno.test("samplingParams() names each bad field the way the API spells it", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { temperature: -1 },
      /temperature must be a number in \[0, 100\], got -1$/,
    ],
    [{ topK: 1.5 }, /top_k must be a non-negative integer/],
    [{ topP: 0 }, /top_p must be in \(0, 1\], got 0$/],
    [{ maxTokens: 0 }, /max_tokens must be an integer in \[1, /],
    [{ maxTokens: "5" }, /max_tokens must be an integer/],
    [{ seed: -3 }, /seed must be a non-negative integer, got -3$/],
    [{ stop: [""] }, /stop must be up to 16 non-empty strings/],
  ];
  for (const [partial, message] of cases) {
    assert.throws(() => samplingParams(partial as never), message);
  }
  assert.throws(
    () => samplingParams({ maxTokens: 5000 }, { maxTokens: 1024 }),
    /max_tokens must be an integer in \[1, 1024\], got 5000/,
  );
});
