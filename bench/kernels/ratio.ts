/**
 * The 8-bit/16-bit time ratio of each 8-bit row, from rows measured in the
 * same run: against the same backend's bf16 row (else fp16) at the same
 * point; a backend with no 16-bit cache of its own (fa3) against the
 * fastest 16-bit row of any backend there, named in the label.
 *
 * @module
 */

import { dtypeInfo, type KvCacheDtype } from "../../core/dtype.ts";
import type { KernelRow } from "./run.ts";

/** A ratio and what it was taken against. */
export interface TimeRatio {
  readonly ratio: number;
  /** e.g. "bf16" or "flashinfer bf16". */
  readonly against: string;
}

const SIXTEEN: readonly string[] = ["bf16", "fp16"];

function samePoint(a: KernelRow, b: KernelRow): boolean {
  return a.target === b.target && a.shape === b.shape && a.mode === b.mode &&
    a.context === b.context && a.batch === b.batch;
}

/**
 * The ratio of every 8-bit row that has a 16-bit counterpart.
 *
 * @example Usage
 * ```ts
 * import { timeRatios } from "./ratio.ts";
 * import assert from "node:assert/strict";
 *
 * const base = { backend: "x", target: "native", shape: "llama", mode: "decode", context: 8, batch: 1 } as const;
 * const bf16 = { ...base, dtype: "bf16", ms: 2 } as never;
 * const int8 = { ...base, dtype: "int8", ms: 1 } as never;
 * assert.deepEqual(timeRatios([bf16, int8]).get(int8), { ratio: 0.5, against: "bf16" });
 * ```
 */
export function timeRatios(
  rows: readonly KernelRow[],
): Map<KernelRow, TimeRatio> {
  const out = new Map<KernelRow, TimeRatio>();
  for (const r of rows) {
    if (dtypeInfo(r.dtype as KvCacheDtype).bytes !== 1) continue;
    const peers = rows.filter((b) =>
      samePoint(r, b) && SIXTEEN.includes(b.dtype)
    );
    const own = SIXTEEN.map((d) =>
      peers.find((b) => b.backend === r.backend && b.dtype === d)
    ).find((b) => b !== undefined);
    if (own) {
      out.set(r, { ratio: r.ms / own.ms, against: own.dtype });
      continue;
    }
    if (peers.some((b) => b.backend === r.backend)) continue;
    const fastest = peers.reduce<KernelRow | undefined>(
      (best, b) => (best === undefined || b.ms < best.ms ? b : best),
      undefined,
    );
    if (fastest) {
      out.set(r, {
        ratio: r.ms / fastest.ms,
        against: `${fastest.backend} ${fastest.dtype}`,
      });
    }
  }
  return out;
}
