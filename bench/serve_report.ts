/**
 * The serving benchmark's results as a Markdown table (printed and saved),
 * a results file that states the command, the machine, the commit and what
 * was scaled, and two SVG plots beside it.
 *
 * @module
 */

import { barChart, lineChart } from "./charts.ts";
import type { DatasetShape } from "./datasets.ts";
import type { KvBudget } from "./kv_budget.ts";
import { describeMachine, type MachineInfo } from "./machine.ts";
import type { ServeResult } from "./serve_run.ts";

/** Everything a results file says. */
export interface ServeReport {
  readonly seed: DatasetShape;
  readonly scaled: DatasetShape;
  readonly command: string;
  readonly machine: MachineInfo;
  /** One line on the model (name, layers, dtype). */
  readonly model: string;
  readonly kvBudget: KvBudget;
  readonly maxNumBatchedTokens: number;
  readonly results: readonly ServeResult[];
  /** Extra lines (fp8 scale fallback, selection flags). */
  readonly notes: readonly string[];
}

/** Index of the baseline: the bf16 configuration, else the first. */
export function baselineIndex(results: readonly ServeResult[]): number {
  return Math.max(
    0,
    results.findIndex((r) => /^(bf16|bfloat16)$/.test(r.label)),
  );
}

/** The results as a Markdown table, one row per configuration. */
export function resultsTable(results: readonly ServeResult[]): string {
  const base = results[baselineIndex(results)];
  const f = (v: number, d = 1) => Number.isFinite(v) ? v.toFixed(d) : "-";
  const p = (x: ServeResult["ttftS"], scale: number, d: number) =>
    `${f(x.p50 * scale, d)} / ${f(x.p90 * scale, d)} / ${f(x.p99 * scale, d)}`;
  const head = [
    "kv dtype",
    "out tok/s",
    "total tok/s",
    `vs ${base?.label ?? "-"}`,
    "TTFT p50/p90/p99 s",
    "TPOT p50/p90/p99 ms",
    "batch mean/max",
    "preempt",
    "recomputed tok",
    "KV blocks",
    "KV MiB",
    "KV tokens",
    "fwd ms/tok",
    "attn ms/tok",
    "wall s",
    "CPU s",
    "out tok/CPU-s",
  ];
  const rows = results.map((r) => [
    r.label,
    f(r.outputTps),
    f(r.totalTps),
    `${f(r.outputTps / base.outputTps, 2)}x`,
    p(r.ttftS, 1, 2),
    p(r.tpotS, 1000, 0),
    `${f(r.meanBatch)} / ${r.maxBatch}`,
    String(r.preemptions),
    String(r.recomputedTokens),
    String(r.pool.blocks),
    f(r.pool.bytes / 2 ** 20, 2),
    String(r.pool.tokens),
    f(1000 * r.forwardS / r.forwardTokens, 2),
    f(1000 * r.attentionS / r.forwardTokens, 2),
    f(r.wallS),
    f(r.cpuS),
    `${f(r.outputTokens / r.cpuS)} (${
      f((r.outputTokens / r.cpuS) / (base.outputTokens / base.cpuS), 2)
    }x)`,
  ]);
  return [head, head.map(() => "---"), ...rows]
    .map((r) => `| ${r.join(" | ")} |`).join("\n");
}

/** The whole results file. */
export function reportMarkdown(r: ServeReport, svgNames: string[]): string {
  const { seed: s, scaled: d } = r;
  const scaling = [
    "| | seeds (TensorRT-LLM) | this run |",
    "| --- | --- | --- |",
    `| input tokens | ${s.inputLen} | ${d.inputLen} |`,
    `| output tokens | ${s.outputLen} | ${d.outputLen} |`,
    `| requests | ${s.numRequests} | ${d.numRequests} |`,
    `| max batch (max-num-seqs) | ${s.maxBatch} | ${d.maxBatch} |`,
    `| KV memory | GPU memory left after weights | ${r.kvBudget.why} |`,
    `| tokens per step | - | ${r.maxNumBatchedTokens} (max-num-batched-tokens) |`,
  ].join("\n");
  const layers = r.results.map((x) =>
    `- ${x.label}: KV ${x.kvDtypes}; ${x.backends}; pool ${x.pool.blocks} blocks x ${x.pool.bytesPerBlock} bytes`
  );
  return [
    `# Serving benchmark: ${d.name}`,
    "",
    `Command: \`${r.command}\``,
    "",
    `Machine: ${describeMachine(r.machine)}`,
    "",
    `Model: ${r.model}`,
    "",
    "## What was scaled",
    "",
    scaling,
    "",
    "Offline throughput: every request arrives at t=0 (TTFT therefore includes queueing), random byte prompts (ids 0..255) from the seed, temperature 0, ignore_eos so every request produces exactly its output length.",
    "",
    "## Results",
    "",
    resultsTable(r.results),
    "",
    "Columns: throughput over the wall time of the whole run; TTFT from arrival; TPOT after the first token; batch = sequences per engine iteration; recomputed tok = tokens run again after preemptions; fwd ms/tok = model forward time per token it ran (prefill, decode and recomputed tokens alike), attn ms/tok = the part of it spent in the attention backends' write and attend (quantize, dequantize, attend); CPU s = CPU time of the benchmark process (all threads) during the run, which other processes on the shared cores disturb much less than wall time; out tok/CPU-s compares configurations on that basis (ratio to the baseline in brackets).",
    "",
    ...layers,
    ...r.notes.map((n) => `- ${n}`),
    "",
    ...svgNames.map((n) => `![${n}](${n})`),
    "",
  ].join("\n");
}

/** Writes serve-<dataset>.md and its two SVG plots into `dir`; returns their paths. */
export async function writeServeReport(
  dir: string,
  r: ServeReport,
): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const name = `serve-${r.scaled.name}`;
  const base = r.results[baselineIndex(r.results)];
  const throughput = barChart(
    r.results.map((x) => ({
      label: x.label,
      value: x.outputTps,
      note: `${x.outputTps.toFixed(1)} (${
        (x.outputTps / base.outputTps).toFixed(2)
      }x)`,
    })),
    {
      title: `${r.scaled.name}: output tokens/s per KV dtype`,
      xLabel: "KV cache dtype",
      yLabel: "output tokens/s",
    },
  );
  const batch = lineChart(
    r.results.map((x) => ({ name: x.label, values: x.batchSizes })),
    {
      title: `${r.scaled.name}: effective batch size per iteration`,
      xLabel: "iteration",
      yLabel: "sequences in the batch",
    },
  );
  const files: [string, string][] = [
    [`${name}-throughput.svg`, throughput],
    [`${name}-batch.svg`, batch],
  ];
  files.push([`${name}.md`, reportMarkdown(r, files.map(([n]) => n))]);
  const paths: string[] = [];
  for (const [file, content] of files) {
    const path = `${dir.replace(/\/+$/, "")}/${file}`;
    await Deno.writeTextFile(path, content);
    paths.push(path);
  }
  return paths;
}
