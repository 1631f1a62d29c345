/**
 * `deno task bench serve`: the field's serving benchmark (prefill-heavy and
 * decode-heavy, offline, every request at t=0) scaled to 2 CPU cores, run
 * in-process on the engine once per KV cache dtype, with a results file
 * and plots per dataset. See `--help`.
 *
 * @module
 */

import { UsageError } from "../tools/cli_options.ts";
import { planSpec } from "../server/plan_model.ts";
import { SEED_DATASETS } from "./datasets.ts";
import { defaultKvBudget, formatMiB, type KvBudget } from "./kv_budget.ts";
import { loadAverage, machineInfo } from "./machine.ts";
import { ProgressLine } from "./progress.ts";
import { loadServeModel } from "./serve_model.ts";
import {
  parseServeBenchArgs,
  SERVE_BENCH_HELP,
  type ServeBenchOptions,
  shapeFor,
} from "./serve_options.ts";
import { resultsTable, writeServeReport } from "./serve_report.ts";
import { runServe, type ServeResult } from "./serve_run.ts";

const HELP = `Usage: deno task bench serve [options]

Runs the serving benchmark in-process: synthetic requests shaped like the
seeds' datasets (prefill-heavy 2048 in / 128 out, decode-heavy 128 in / 2048
out, 1024 requests, batch 256), scaled down for 2 CPU cores to 256/16 and
16/256 tokens, 64 requests, max-num-seqs 64. One configuration per
--kv-cache-dtype; writes <out-dir>/serve-<dataset>.md and SVG plots.

${SERVE_BENCH_HELP}`;

/** Runs the benchmark; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let o: ServeBenchOptions;
  try {
    o = parseServeBenchArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(
      `error: ${error.message}: see deno task bench serve --help`,
    );
    return 2;
  }
  if (o.help) {
    console.log(HELP);
    return 0;
  }
  try {
    await run(o, `deno task bench serve ${args.join(" ")}`.trim());
    return 0;
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    return 1;
  }
}

async function run(o: ServeBenchOptions, command: string): Promise<void> {
  const { model, description } = await loadServeModel(o.modelDir);
  const machine = await machineInfo();
  console.log(`Model: ${description}`);
  const warnings = new Set<string>();
  for (const name of o.datasets) {
    const shape = shapeFor(name, o);
    const need = shape.inputLen + shape.outputLen;
    if (need > model.maxModelLen) {
      throw new Error(
        `${name} needs ${need} tokens per request but the model's context is ${model.maxModelLen}: use a model with a longer context`,
      );
    }
    const blockSize = o.configs[0].select.blockSize ?? 16;
    const budget: KvBudget = o.kvCacheMemory !== undefined
      ? {
        bytes: o.kvCacheMemory,
        why: `${formatMiB(o.kvCacheMemory)} (--kv-cache-memory)`,
      }
      : defaultKvBudget(model.spec, shape, {
        blockSize,
        sequences: o.quick ? 4 : 16,
      });
    const seed = SEED_DATASETS[name];
    console.log(
      `\n== ${name}: ${shape.inputLen} in / ${shape.outputLen} out, ${shape.numRequests} requests, max-num-seqs ${shape.maxBatch}` +
        ` (seeds: ${seed.inputLen} / ${seed.outputLen}, ${seed.numRequests} requests, batch ${seed.maxBatch})` +
        `\n   KV budget: ${budget.why}`,
    );
    const results: ServeResult[] = [];
    const loads: string[] = [];
    for (const config of o.configs) {
      const { plan, definitions } = await planSpec(model.spec, config.select);
      const label = config.label === "auto"
        ? `auto (${plan.model.dtype})`
        : config.label;
      const progress = new ProgressLine(label, shape.numRequests);
      const r = await runServe(model, {
        label,
        dataset: shape,
        plan,
        definitions,
        kvCacheMemory: budget.bytes,
        maxNumBatchedTokens: o.maxNumBatchedTokens,
        seed: o.seed,
        onProgress: (s) => progress.update(s),
        warn: (m) => warnings.add(m),
        engine: o.engine,
      });
      progress.finish();
      console.log(
        `  ${label}: ${r.outputTps.toFixed(1)} output tok/s, batch mean ${
          r.meanBatch.toFixed(1)
        } max ${r.maxBatch}, ${r.preemptions} preemptions, ${r.pool.blocks} blocks, ${
          r.wallS.toFixed(1)
        } s`,
      );
      results.push(r);
      loads.push(`${label} ${await loadAverage()}`);
    }
    console.log(`\n${resultsTable(results)}\n`);
    const paths = await writeServeReport(o.outDir, {
      seed,
      scaled: shape,
      command,
      machine,
      model: description,
      kvBudget: budget,
      maxNumBatchedTokens: o.maxNumBatchedTokens,
      results,
      notes: [
        ...notesFor(o, results, warnings),
        `1-minute load average after each configuration (2 cores, shared with other processes): ${
          loads.join(", ")
        }`,
      ],
    });
    console.log(`Wrote ${paths.join(", ")}`);
  }
}

function notesFor(
  o: ServeBenchOptions,
  results: readonly ServeResult[],
  warnings: ReadonlySet<string>,
): string[] {
  const notes: string[] = [];
  const s = o.configs[0].select;
  notes.push(`Scheduling policy: ${o.engine.schedulingPolicy}`);
  if (results.some((r) => r.kvDtypes.includes("fp8"))) {
    notes.push(
      o.engine.kvQuantParamsPath !== undefined
        ? `fp8 scales: from ${o.engine.kvQuantParamsPath} (--kv-quant-params-path). Throughput does not depend on the scale.`
        : o.engine.calculateKvScales
        ? "fp8 scales: measured on each engine's first prefill, then fixed (--calculate-kv-scales). Throughput does not depend on the scale."
        : "fp8 scales: 1.0 for every layer (no calibration file; vLLM's default). Throughput does not depend on the scale.",
    );
  }
  if (results.some((r) => r.kvDtypes.includes("int8"))) {
    notes.push(`int8 scheme: ${s.int8Scheme} (no calibration needed)`);
  }
  if ((s.skipLayers ?? []).length > 0) {
    notes.push(
      `--kv-cache-dtype-skip-layers ${
        s.skipLayers!.join(",")
      }: kept in the model dtype`,
    );
  }
  if (results.some((r) => r.batchSizes[0] === 1 && r.requests > 1)) {
    notes.push(
      "The engine starts stepping inside the first addRequest(), so iteration 1 holds one request; the rest join from iteration 2.",
    );
  }
  for (const w of warnings) notes.push(`engine warning: ${w}`);
  return notes;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
