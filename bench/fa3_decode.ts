/**
 * Decode attention time of the native fa3 kernels (int8 and fp8_e4m3,
 * 8-bit compute) against the native xformers bf16 baseline, for one
 * sequence at 8k and 32k tokens on a Llama-3-8B-shaped layer (32 query
 * heads, 8 kv heads, head_dim 128, blocks of 16). Prints the median of
 * timed attend() calls after a warm-up, the backends interleaved.
 *
 * ```sh
 * deno task bench fa3-decode [--reps 20]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { AttentionBackend } from "../core/backend.ts";
import { planBatch } from "../core/batch.ts";
import type { KvCacheDtype } from "../core/dtype.ts";
import type { LayerConfig } from "../core/layer.ts";
import { mulberry32 } from "../core/prng.ts";
import { estimateScales } from "../core/scales.ts";
import fa3 from "../backends/fa3/mod.ts";
import xformers from "../backends/xformers/mod.ts";

async function create(
  def: typeof fa3,
  settings?: Record<string, unknown>,
): Promise<AttentionBackend> {
  const target = def.targets.find((t) => t.target === "native")!;
  const probe = await target.probe();
  if (!probe.available) throw new Error(`${def.name}: ${probe.reason}`);
  return await target.create({ settings });
}

/** A backend with a filled cache of `seqLen` tokens: its attend call. */
async function prepare(
  backend: AttentionBackend,
  kvDtype: KvCacheDtype,
  seqLen: number,
): Promise<() => Promise<void>> {
  const layer: LayerConfig = {
    index: 0,
    kind: "full",
    numQHeads: 32,
    numKvHeads: 8,
    headDim: 128,
    scale: 128 ** -0.5,
    kvDtype,
    ...(kvDtype === "int8" ? { int8Scheme: "per_tensor" as const } : {}),
    blockSize: 16,
  };
  const rand = mulberry32(1);
  const row = layer.numKvHeads * layer.headDim;
  const blocks = seqLen / layer.blockSize;
  const chunk = 1024;
  const sample = Float32Array.from(
    { length: chunk * row },
    () => rand() * 2 - 1,
  );
  const scales = estimateScales(sample, sample, kvDtype);
  const cache = await backend.createCache(layer, { numBlocks: blocks, scales });
  for (let t0 = 0; t0 < seqLen; t0 += chunk) {
    const slots = Int32Array.from({ length: chunk }, (_, i) => t0 + i);
    await backend.write(cache, {
      keys: sample,
      values: sample,
      slotMapping: slots,
    });
  }
  const plan = planBatch({
    queryStartLoc: Int32Array.of(0, 1),
    seqLens: Int32Array.of(seqLen),
    blockTables: Int32Array.from({ length: blocks }, (_, i) => i),
    maxBlocksPerSeq: blocks,
    blockSize: layer.blockSize,
  });
  const query = Float32Array.from({ length: 32 * 128 }, () => rand() * 6 - 3);
  const out = new Float32Array(query.length);
  return async () => await backend.attend(cache, plan, { query, out });
}

/** Parses `--reps N`, runs the benchmark, returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let repsFlag: string;
  try {
    repsFlag = parseArgs({
      args,
      options: { reps: { type: "string", default: "20" } },
      strict: true,
      allowPositionals: false,
    }).values.reps;
  } catch (e) {
    console.error(`error: ${(e as Error).message}: use --reps N`);
    return 2;
  }
  const reps = Number(repsFlag);
  if (!Number.isInteger(reps) || reps < 1) {
    console.error(
      `error: --reps: "${repsFlag}" is not a positive integer number of timed rounds`,
    );
    return 2;
  }
  const runs: [string, () => Promise<AttentionBackend>, KvCacheDtype][] = [
    ["xformers bf16", () => create(xformers), "bf16"],
    ["fa3 int8 (promotion on)", () => create(fa3), "int8"],
    ["fa3 fp8_e4m3 (promotion on)", () => create(fa3), "fp8_e4m3"],
    [
      "fa3 int8 (promotion off)",
      () => create(fa3, { accumulationPromotion: false }),
      "int8",
    ],
  ];
  console.log(
    `decode attention, 1 sequence, 32 q / 8 kv heads, head_dim 128, median of ${reps} interleaved rounds`,
  );
  for (const seqLen of [8192, 32768]) {
    const backends = await Promise.all(runs.map(([, make]) => make()));
    const attends = [];
    for (const [i, [, , dtype]] of runs.entries()) {
      attends.push(await prepare(backends[i], dtype, seqLen));
    }
    for (const attend of attends) for (let i = 0; i < 3; i++) await attend();
    // Interleaved, so that a change in the machine's load hits every run alike.
    const ms: number[][] = runs.map(() => []);
    for (let rep = 0; rep < reps; rep++) {
      for (const [i, attend] of attends.entries()) {
        const start = performance.now();
        await attend();
        ms[i].push(performance.now() - start);
      }
    }
    for (const [i, [name]] of runs.entries()) {
      const sorted = ms[i].sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)];
      console.log(`ctx ${seqLen}\t${name.padEnd(28)}\t${median.toFixed(2)} ms`);
      await backends[i].dispose();
    }
  }
  return 0;
}
