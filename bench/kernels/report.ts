/**
 * The kernel benchmark's results file: a Markdown table per shape and mode
 * (time, KV bytes read, effective GB/s, % of the bandwidth measured in the
 * same run, GFLOP/s, 8-bit/16-bit time ratio), the skips with their
 * reasons, and an SVG plot of decode GB/s over context length.
 *
 * @module
 */

import { lineChart } from "../charts.ts";
import { describeMachine, type MachineInfo } from "../machine.ts";
import { type Bandwidth, formatBytes } from "./bandwidth.ts";
import { timeRatios } from "./ratio.ts";
import type { KernelRow, Skip } from "./run.ts";
import type { KernelShape } from "./shapes.ts";

/** Everything a results file says. */
export interface KernelReport {
  readonly target: string;
  /** The WebGPU adapter's name, when the target is webgpu. */
  readonly adapter?: string;
  readonly command: string;
  readonly machine: MachineInfo;
  /** The bandwidth the kernel rows are compared with. */
  readonly bandwidth: Bandwidth;
  /** The bandwidth torch's rows are compared with (its own device copy). */
  readonly torchBandwidth?: Bandwidth;
  readonly shapes: readonly KernelShape[];
  readonly rows: readonly KernelRow[];
  readonly skips: readonly Skip[];
  readonly notes: readonly string[];
}

/** GB/s (1e9 bytes) of a row's KV read. */
export function gbPerS(r: KernelRow): number {
  return r.kvBytes / r.ms / 1e6;
}

/** Three significant digits, without exponent notation for large values. */
function sig3(x: number): string {
  return x >= 100 ? x.toFixed(0) : x.toPrecision(3);
}

function pctOf(r: KernelRow, report: KernelReport): string {
  const bw = r.target === "cuda" ? report.torchBandwidth : report.bandwidth;
  return bw?.gbPerS ? `${sig3(100 * gbPerS(r) / bw.gbPerS)}%` : "—";
}

/** The Markdown tables, one per shape and mode. */
export function kernelTables(report: KernelReport): string {
  const ratios = timeRatios(report.rows);
  const parts: string[] = [];
  for (const shape of report.shapes) {
    for (const mode of ["decode", "prefill"] as const) {
      const rows = report.rows.filter((r) =>
        r.shape === shape.name && r.mode === mode
      );
      if (rows.length === 0) continue;
      parts.push(`### ${shape.name} ${mode}: ${shape.describe}\n`);
      parts.push(
        "| backend | KV dtype | context | batch | time (ms) | KV read | GB/s | % of bandwidth | GFLOP/s | 8-bit/16-bit time |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
      );
      for (const r of rows) {
        const q = ratios.get(r);
        parts.push(
          `| ${r.backend}/${r.target} | ${r.dtype} | ${r.context} | ${r.batch} | ${
            r.ms >= 1000 ? r.ms.toFixed(0) : r.ms.toPrecision(4)
          } | ${formatBytes(r.kvBytes)} | ${sig3(gbPerS(r))} | ${
            pctOf(r, report)
          } | ${sig3(r.flops / r.ms / 1e6)} | ${
            q ? `${q.ratio.toFixed(2)} (vs ${q.against})` : "—"
          } |`,
        );
      }
      parts.push("");
    }
  }
  return parts.join("\n");
}

/** The whole results file. */
export function kernelMarkdown(report: KernelReport): string {
  const methods = new Map<string, Set<string>>();
  const coverage = new Map<string, number[]>();
  for (const r of report.rows) {
    const key = `${r.backend}/${r.target}`;
    if (!methods.has(key)) methods.set(key, new Set());
    methods.get(key)!.add(r.method);
    if (r.clockCoverage !== undefined) {
      coverage.set(key, [...(coverage.get(key) ?? []), r.clockCoverage]);
    }
  }
  const covered = (key: string) => {
    const c = coverage.get(key);
    if (!c) return "";
    const pct = (x: number) => (100 * x).toFixed(0);
    return ` (the timestamps covered ${pct(Math.min(...c))}-${
      pct(Math.max(...c))
    }% of the wall clock from submit to completion)`;
  };
  const bw = (b: Bandwidth) =>
    b.gbPerS ? `${b.gbPerS.toFixed(2)} GB/s (${b.how})` : b.how;
  return [
    `# Attention kernels: ${report.target}${
      report.adapter ? ` on ${report.adapter}` : ""
    }`,
    "",
    `Command: \`${report.command}\``,
    "",
    `Machine: ${describeMachine(report.machine)}`,
    "",
    `Memory bandwidth, measured in this run: ${bw(report.bandwidth)}`,
    ...(report.torchBandwidth
      ? ["", `torch's device copy bandwidth: ${bw(report.torchBandwidth)}`]
      : []),
    "",
    "Time is the median of the timed calls (one warm-up first). KV read: the K and V bytes one call must read at the least (every cached token once per sequence, in the stored dtype, int8 per-token scales included); GB/s = KV read / time; % of bandwidth = GB/s / the bandwidth above. Contexts whose cache fits in the CPU's caches can exceed 100%.",
    "",
    "Timing per backend:",
    ...[...methods].map(([k, m]) =>
      `- ${k}: ${[...m].join("; ")}${covered(k)}`
    ),
    ...report.notes.map((n) => `- ${n}`),
    "",
    kernelTables(report),
    ...(report.skips.length > 0
      ? [
        "## Not measured",
        "",
        ...report.skips.map((s) => `- ${s.what}: ${s.reason}`),
        "",
      ]
      : []),
  ].join("\n");
}

/**
 * Decode GB/s over context length, one line per backend, dtype and shape,
 * at the largest batch each one measured.
 */
export function kernelChart(report: KernelReport): string {
  const contexts = [...new Set(report.rows.map((r) => r.context))].sort((
    a,
    b,
  ) => a - b);
  const series = new Map<string, KernelRow[]>();
  for (const r of report.rows.filter((r) => r.mode === "decode")) {
    const key = `${r.backend}/${r.target} ${r.dtype} ${r.shape}`;
    series.set(key, [...(series.get(key) ?? []), r]);
  }
  return lineChart(
    [...series].map(([name, rows]) => {
      const batch = Math.max(...rows.map((r) => r.batch));
      const at = new Map(
        rows.filter((r) => r.batch === batch).map((r) => [r.context, r]),
      );
      const values: number[] = [];
      for (const c of contexts) {
        const r = at.get(c);
        if (!r) break;
        values.push(gbPerS(r));
      }
      return { name: `${name} b${batch}`, values };
    }),
    {
      title: `Decode KV read GB/s: ${report.target}${
        report.adapter ? ` on ${report.adapter}` : ""
      }`,
      xLabel: `context: ${
        contexts.map((c, i) => `${i + 1} = ${c}`).join(", ")
      }`,
      yLabel: "GB/s",
    },
  );
}

/** File stem: kernels-<target>[-<adapter>], the adapter's name made path-safe. */
export function reportStem(target: string, adapter?: string): string {
  const slug = adapter?.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(
    /^-|-$/g,
    "",
  ).slice(0, 40);
  return `kernels-${target}${slug ? `-${slug}` : ""}`;
}

/** Writes <dir>/<stem>.md and .svg; returns their paths. */
export async function writeKernelReport(
  dir: string,
  report: KernelReport,
): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const stem = `${dir}/${reportStem(report.target, report.adapter)}`;
  await Deno.writeTextFile(`${stem}.md`, kernelMarkdown(report));
  await Deno.writeTextFile(`${stem}.svg`, kernelChart(report));
  return [`${stem}.md`, `${stem}.svg`];
}
