/**
 * Turns a conformance report into what people read: a progress line per
 * case, failures with their reproduce command, and a summary table
 * (passed, failed, skipped with reasons) per target.
 *
 * @module
 */

import type { Target } from "../core/backend.ts";
import type { CaseResult } from "./case.ts";
import type { ConformanceReport } from "./runner.ts";

/** One progress line, e.g. `  ok    native  attend:mode=decode;... (12 ms)`. */
export function formatProgress(target: Target, r: CaseResult): string {
  const tag = r.status === "passed"
    ? "ok  "
    : r.status === "skipped"
    ? "skip"
    : r.expectedFailure
    ? "xfail"
    : "FAIL";
  const where = r.status === "failed" && r.phase
    ? `, ${r.timedOut ? "timed out" : "failed"} in ${r.phase}`
    : "";
  return `  ${tag.padEnd(5)} ${target.padEnd(9)} ${r.address} (${
    r.ms.toFixed(0)
  } ms${where})`;
}

/**
 * The summary: failures in full (with the phase, and the backend's stack
 * for an exception), then per target the counts and each skip reason with
 * how many cases it covers, then the run's problems (no case ran, a filter
 * that matches nothing, a requested target absent), then the result.
 *
 * @example Usage
 * ```ts
 * import { formatSummary } from "./report.ts";
 * import assert from "node:assert/strict";
 *
 * const text = formatSummary({
 *   backend: "mine", version: "1", seed: 1, long: false, unexpectedFailures: 1, unexpectedPasses: [],
 *   targets: [{ target: "native", available: false, required: false, reason: "not built", results: [] }],
 *   problems: ["no case ran: no target of this backend is available here"],
 * });
 * assert.match(text, /native .*skipped: not built/);
 * assert.match(text, /Problems with the run:\n  no case ran/);
 * assert.match(text, /Result: NOT conformant: 1 unexpected failure/);
 * ```
 */
export function formatSummary(report: ConformanceReport): string {
  const out: string[] = [];
  for (const t of report.targets) {
    for (const r of t.results) {
      if (r.status === "failed") {
        out.push(
          `${r.expectedFailure ? "XFAIL" : "FAIL"} ${t.target} ${r.address}${
            r.phase
              ? ` (${r.timedOut ? "timed out" : "failed"} in phase ${r.phase})`
              : ""
          }`,
          `  ${r.message?.replaceAll("\n", "\n  ")}`,
        );
      }
    }
  }
  out.push(
    "",
    `Conformance of ${report.backend} ${report.version} (seed ${report.seed}${
      report.long ? ", long cases included" : ""
    })`,
    "",
  );
  const header = ["target", "passed", "failed", "known failures", "skipped"];
  const rows = report.targets.map((t) => {
    if (!t.available) {
      return [
        t.target,
        "-",
        t.required ? "absent" : "-",
        "-",
        `skipped: ${t.reason}`,
      ];
    }
    const count = (f: (r: CaseResult) => boolean) =>
      String(t.results.filter(f).length);
    return [
      t.target,
      count((r) => r.status === "passed"),
      count((r) => r.status === "failed" && !r.expectedFailure),
      count((r) => r.status === "failed" && !!r.expectedFailure),
      count((r) => r.status === "skipped"),
    ];
  });
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i].length))
  );
  for (const r of [header, ...rows]) {
    out.push(r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
  }
  for (const t of report.targets) {
    const reasons = new Map<string, number>();
    for (const r of t.results) {
      if (r.status === "skipped") {
        reasons.set(r.message ?? "", (reasons.get(r.message ?? "") ?? 0) + 1);
      }
    }
    if (reasons.size > 0) {
      out.push("", `Skipped on ${t.target} (by capability or tier):`);
      for (const [why, n] of reasons) {
        out.push(`  ${String(n).padStart(3)}  ${why}`);
      }
    }
  }
  if (report.unexpectedPasses.length > 0) {
    out.push(
      "",
      "Listed as known failures but passed (remove them from the expectations file):",
    );
    for (const a of report.unexpectedPasses) out.push(`  ${a}`);
  }
  if (report.problems.length > 0) {
    out.push("", "Problems with the run:");
    for (const p of report.problems) out.push(`  ${p}`);
  }
  const ran = report.targets.reduce(
    (n, t) => n + t.results.filter((r) => r.status !== "skipped").length,
    0,
  );
  out.push(
    "",
    report.unexpectedFailures === 0
      ? `Result: conformant for every case run (${ran})`
      : `Result: NOT conformant: ${report.unexpectedFailures} unexpected failure(s)${
        report.problems.length > 0
          ? `, ${report.problems.length} of them problems with the run`
          : ""
      }`,
  );
  return out.join("\n");
}
