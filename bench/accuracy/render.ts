/**
 * Markdown for each accuracy section: a heading, what was measured (so the
 * numbers can be read without the code), and the table.
 *
 * @module
 */

import type { KernelRow } from "./kernels.ts";
import { fmt, markdownTable, pct } from "./metrics.ts";
import type { ModelReport } from "./model.ts";
import type { NeedleCell } from "./needle.ts";
import type { SkippedTarget } from "./targets.ts";

/** The kernels section. */
export function kernelsMarkdown(
  rows: readonly KernelRow[],
  skipped: readonly SkippedTarget[],
  shape: string,
): string {
  const lengths = [...new Set(rows.map((r) => r.len))];
  const groups = new Map<string, KernelRow[]>();
  for (const r of rows) {
    const key = `${r.target}|${r.variant}|${r.source}`;
    groups.set(key, [...groups.get(key) ?? [], r]);
  }
  const cell = (s?: { maxAbs: number; rms: number }) =>
    s ? `${fmt(s.maxAbs)} / ${fmt(s.rms)}` : "";
  const table = markdownTable(
    [
      "backend",
      "cache",
      "scales",
      ...lengths.flatMap((l) => [`kernel L=${l}`, `quant L=${l}`]),
    ],
    [...groups.values()].map((g) => [
      g[0].target,
      g[0].variant,
      g[0].source,
      ...lengths.flatMap((len) => {
        const r = g.find((x) => x.len === len);
        if (!r) return ["", ""];
        if (r.skip) return [`not supported: ${r.skip}`, ""];
        return [cell(r.kernel), cell(r.quant)];
      }),
    ]),
  );
  const refs = lengths.map((len) =>
    `${
      fmt(rows.find((r) => r.len === len && !r.skip)?.refRms ?? NaN)
    } (L=${len})`
  );
  return `## Kernels: attention output error against the fp64 oracle

${shape}. K/V: keys with a per-channel bias and 4 of the head's channels at 10-20x the others' RMS; values near-Gaussian (bench/accuracy/kv_data.ts). Cells are max abs / RMS of the output error. **kernel**: against the oracle on the backend's own dequantized cache (the kernel's own error). **quant**: against the oracle on the original K/V (what quantization costs). Scales: **default 1.0** is vLLM's fp8 fallback; **dynamic** is amax / format max of this very data (the "first batch"); **calibrated** is estimated from a different 512-token sample of the same distribution (another seed, same layer). Per-tensor int8 has no 1.0 default: core refuses it. Oracle output RMS: ${
    refs.join(", ")
  }.

${table}
${
    skipped.length
      ? `\nNot run: ${
        skipped.map((s) => `${s.label} (${s.reason})`).join("; ")
      }.\n`
      : ""
  }`;
}

/** The needle section: retrieval (with the needle's weight) and output error. */
export function needleMarkdown(
  cells: readonly NeedleCell[],
  backend: string,
  trials: number,
): string {
  const lengths = [...new Set(cells.map((c) => c.len))];
  const paths = [...new Set(cells.map((c) => c.path))];
  const k = (l: number) => `${l / 1024}k`;
  const grid = (f: (c: NeedleCell) => string) =>
    paths.map((p) => [
      p,
      ...lengths.map((l) => {
        const c = cells.find((x) => x.path === p && x.len === l);
        return c ? f(c) : "";
      }),
    ]);
  const header = ["path", ...lengths.map(k)];
  const samples = cells[0]?.samples ?? 0;
  return `## Needle: long-context retrieval

One decode query (8 query heads, 2 kv heads, head_dim 128) over a haystack with the kernels section's K/V structure; one planted needle key per kv head whose logit exceeds the log of the haystack's whole attention mass by a margin drawn from N(2.5, 1) nats (bench/accuracy/needle_data.ts). **Retrieved**: the head's output is closer to the needle's value than to the output with no needle and to 6 other values of the context, i.e. the needle's weight in the output is above about 1/2. ${trials} trials x 8 heads = ${samples} retrievals per cell, the same trials for every path. Storage paths run through ${backend} (fp8/int8 per-tensor with dynamic scales). **compute** paths are bench/accuracy/low_precision_emulation.ts, an emulation of the fa3 algorithm (Q, K, V quantized; online softmax over 64-token blocks; P quantized to 8 bits unless "P kept fp32"), not a backend: **promotion on** sums at most 2 blocks in the low-precision accumulator before adding into fp32; **promotion off** keeps O and the row sum in it for the whole sequence. The accumulator is emulated by rounding to nearest even after every add, with fp32's exponent range and 7 mantissa bits (**bf16**) or 13 (about Hopper's FP8 tensor-core accumulation).

Retrieval accuracy (mean effective needle weight: 1 = only the needle, 0 = as if absent):

${
    markdownTable(
      header,
      grid((c) => `${pct(c.accuracy)} (${c.needleWeight.toFixed(2)})`),
    )
  }

Output error, RMS against the fp64 oracle (oracle output RMS ${
    fmt(cells[0]?.oracleRms ?? NaN)
  } at ${k(lengths[0])}):

${markdownTable(header, grid((c) => fmt(c.errorRms)))}
`;
}

/** The model section. */
export function modelMarkdown(
  report: ModelReport,
  checkpoint: string,
  textNote: string,
): string {
  const table = markdownTable(
    [
      "cache",
      "scales",
      "plan",
      "mean Δ log-lik (nats/token)",
      "mean abs Δ log-lik",
      "top-1 agreement",
      "mean KL(bf16 ‖ cache)",
      "max KL(bf16 ‖ cache)",
      "top-1 vs bf16",
    ],
    report.rows.map((r) => [
      r.variant,
      r.source,
      r.plan,
      fmt(r.meanLlDiff),
      fmt(r.meanAbsLlDiff),
      pct(r.top1Agreement),
      fmt(r.meanKl16),
      fmt(r.maxKl16),
      pct(r.top1Agreement16),
    ]),
  );
  return `## Model: demo model end to end

${checkpoint}. One prefill of ${report.tokens} tokens (${textNote}) through engine/transformer.ts and the reference backend; each row against the fp32 cache: the mean over ${
    report.tokens - 1
  } predicted bytes of log p(cache) - log p(fp32) (negative: the variant is worse), its mean absolute value, and how often the most likely next byte is the same; then against the bf16 cache (every layer bf16, the 16-bit cache an 8-bit one replaces): the mean and the largest over positions of KL(p_bf16 ‖ p_cache) on the whole next-byte distribution (nats), and the top-1 agreement. fp32 baseline: ${
    report.baselineNll.toFixed(3)
  } nats/token (${
    (report.baselineNll / Math.LN2).toFixed(3)
  } bits/byte). Scales per layer: **dynamic** from this text's own K/V (the prefill is the first batch), **calibrated** from another text (Psalm 23). Plans: **all layers** in the cache dtype (the model's own plan), or **sliding-window layers fp32** (--kv-cache-dtype-skip-layers sliding_window).

${table}
`;
}
