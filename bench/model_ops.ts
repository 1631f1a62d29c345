/**
 * Speed of the ops targets, printed as figures (no assertions):
 *
 * 1. matmul GFLOP/s, typescript vs native on each kernel path, for the
 *    demo model's decode shapes and for Llama-size ones;
 * 2. greedy generation with models/demo-gemma2 (reference attention, fp16
 *    cache, one sequence: what `deno task serve` runs per request), tokens/s
 *    per ops target, and where a decode step's time goes (matmul, the O(n)
 *    ops, attention and the rest).
 *
 * Run: `deno task bench model-ops`. Shared machines are noisy:
 * the load average is printed; compare figures from one run only.
 *
 * @module
 */

import { createReferenceBackend } from "../backends/reference/mod.ts";
import { mulberry32 } from "../core/prng.ts";
import { describeMachine, loadAverage, machineInfo } from "./machine.ts";
import type { KernelPathName } from "../native/types.ts";
import type { ModelOps } from "../engine/model_ops.ts";
import { createNativeOps } from "../engine/model_ops_native.ts";
import { selectModelOps } from "../engine/model_ops_select.ts";
import { typescriptOps } from "../engine/model_ops_typescript.ts";
import { Transformer } from "../engine/transformer.ts";
import {
  backendCaches,
  maxRowRelativeError,
  stepBatch,
} from "../engine/transformer_test_support.ts";

const DEMO = new URL("../models/demo-gemma2", import.meta.url).pathname;

/** Median seconds of `fn` over runs lasting about `budget` seconds in all. */
function time(fn: () => void, budget = 0.5): number {
  fn();
  const times: number[] = [];
  const end = performance.now() + budget * 1000;
  while (times.length < 3 || (performance.now() < end && times.length < 1000)) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
  }
  return times.sort((a, b) => a - b)[times.length >> 1];
}

function matmulTable(targets: [string, ModelOps][]): void {
  const rand = mulberry32(1);
  const shapes: [string, number, number, number][] = [
    ["demo q_proj decode", 1, 256, 256],
    ["demo down_proj prefill 64", 64, 256, 512],
    ["llama-1B decode", 1, 2048, 2048],
    ["llama-1B prefill 64", 64, 2048, 2048],
    ["llama-8B mlp decode", 1, 14336, 4096],
  ];
  console.log("\nmatmul GFLOP/s (2 m n k / median time):");
  console.log(
    ["shape [m, n, k]".padEnd(38), ...targets.map(([n]) => n.padStart(24))]
      .join(""),
  );
  for (const [name, m, n, k] of shapes) {
    const x = Float32Array.from({ length: m * k }, () => rand() - 0.5);
    const w = Float32Array.from({ length: n * k }, () => rand() - 0.5);
    const cells = targets.map(([label, ops]) => {
      // The TypeScript kernel is too slow for the large decode shape's budget.
      if (label === "typescript" && m * n * k > 1e8) return "-".padStart(24);
      const packed = ops.pack({ data: w, rows: n, cols: k });
      const out = new Float32Array(m * n);
      const s = time(() => ops.matmul(x, packed, { out }));
      return (2 * m * n * k / s / 1e9).toFixed(2).padStart(24);
    });
    console.log(`${name} [${m}, ${n}, ${k}]`.padEnd(38) + cells.join(""));
  }
}

/** Wraps every op of `ops` to add its time to `spent`. */
function timed(ops: ModelOps, spent: Map<string, number>): ModelOps {
  const wrap = <A extends unknown[], R>(name: string, f: (...a: A) => R) =>
  (
    ...a: A
  ): R => {
    const t0 = performance.now();
    try {
      return f(...a);
    } finally {
      spent.set(name, (spent.get(name) ?? 0) + performance.now() - t0);
    }
  };
  return {
    ...ops,
    matmul: wrap("matmul", ops.matmul),
    rmsNorm: wrap("rmsNorm", ops.rmsNorm),
    applyRope: wrap("rope", ops.applyRope),
    gatedActivation: wrap("activation", ops.gatedActivation),
    addInPlace: wrap("residual", ops.addInPlace),
    softcap: wrap("softcap", ops.softcap),
  };
}

/** One greedy run: tokens/s and the share of each op in the step. */
async function generation(
  ops: ModelOps,
  newTokens: number,
): Promise<{ rate: number; line: string }> {
  const spent = new Map<string, number>();
  const model = await Transformer.load(DEMO, { ops: timed(ops, spent) });
  const backend = createReferenceBackend();
  const { manager, attention } = await backendCaches(model, backend, {
    kvDtype: "fp16",
    numBlocks: 128,
  });
  let next = model.tokenizer!.encode(
    "In the beginning God created the heaven and the earth.",
  );
  await model.forward(
    stepBatch(manager, [{ seq: 0, tokens: next }]),
    attention,
  );
  next = [1];
  spent.clear();
  const t0 = performance.now();
  for (let i = 0; i < newTokens; i++) {
    const logits = await model.forward(
      stepBatch(manager, [{ seq: 0, tokens: next }]),
      attention,
    );
    next = [logits.indexOf(Math.max(...logits))];
  }
  const ms = performance.now() - t0;
  const parts = [...spent].map(([k, v]) =>
    `${k} ${(100 * v / ms).toFixed(1)}%`
  );
  const opsMs = [...spent.values()].reduce((a, b) => a + b, 0);
  const rate = newTokens / ms * 1000;
  const line = `${rate.toFixed(1)} tokens/s (${
    (ms / newTokens).toFixed(2)
  } ms/token; ${parts.join(", ")}; attention and the rest ${
    (100 * (ms - opsMs) / ms).toFixed(1)
  }%)`;
  return { rate, line };
}

/** The demo model's worst row relative error against its reference logits. */
async function referenceError(ops: ModelOps): Promise<number> {
  const model = await Transformer.load(DEMO, { ops });
  const ref = JSON.parse(
    await Deno.readTextFile(`${DEMO}/reference_logits.json`),
  );
  const { manager, attention } = await backendCaches(
    model,
    createReferenceBackend(),
  );
  const logits = await model.forward(
    stepBatch(manager, [{ seq: 0, tokens: ref.token_ids }], { allRows: true }),
    attention,
  );
  return maxRowRelativeError(logits, ref.logits.flat(), model.config.vocabSize);
}

/** Runs the benchmark (it takes no flags); returns the exit code. */
export async function main(args: string[]): Promise<number> {
  if (args.length > 0) {
    console.error(
      `error: bench model-ops takes no flags, got ${args.join(" ")}`,
    );
    return 2;
  }
  console.log(describeMachine(await machineInfo()));
  console.log(`load average: ${await loadAverage()}`);
  const selected = selectModelOps();
  console.log(`default ops: ${selected.reason}`);
  const targets: [string, ModelOps][] = [["typescript", typescriptOps]];
  if (selected.ops.target === "native") {
    const { addon } = (await import("../native/probe.ts"))
      .probeNativeAddon() as {
        addon: Parameters<typeof createNativeOps>[0];
      };
    const best = addon.kernelSelection().best;
    const paths: KernelPathName[] = best === "scalar" ? ["scalar"] : [
      "scalar",
      "avx2",
      ...(best.startsWith("avx512") ? ["avx512" as const] : []),
    ];
    for (const path of paths) {
      targets.push([
        `native ${path}`,
        createNativeOps(addon, { kernelPath: path }),
      ]);
    }
    targets.push([
      `native ${best} bf16`,
      createNativeOps(addon, { weightDtype: "bf16" }),
    ]);
  }
  matmulTable(targets);
  console.log(
    "\nmodels/demo-gemma2 greedy decode of 64 tokens, 1 sequence, reference attention, fp16 cache (best of 3 rounds, targets interleaved):",
  );
  const best = new Map<string, { rate: number; line: string }>();
  for (let round = 0; round < 3; round++) {
    for (const [label, ops] of targets) {
      const run = await generation(ops, 64);
      if (run.rate > (best.get(label)?.rate ?? 0)) best.set(label, run);
    }
  }
  for (const [label, { line }] of best) {
    console.log(`  ${label.padEnd(24)} ${line}`);
  }
  console.log(
    "\nmodels/demo-gemma2 logits vs reference_logits.json (max row relative error):",
  );
  for (const [label, ops] of targets) {
    console.log(
      `  ${label.padEnd(24)} ${(await referenceError(ops)).toExponential(3)}`,
    );
  }
  console.log(`load average: ${await loadAverage()}`);
  return 0;
}
