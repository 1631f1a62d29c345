/**
 * Timing attention through the contract's `attend()`: host arrays in and
 * out, so on WebGPU each call includes Q's upload and the output's
 * read-back (the label says so). Native and reference calls are the
 * kernel itself plus the Node-API or JavaScript call.
 *
 * @module
 */

import { withPlan } from "../../core/plan_fallback.ts";
import type {
  AttentionBackend,
  LayerCache,
  Target,
} from "../../core/backend.ts";
import type { PlannedBatch } from "../../core/batch.ts";
import { percentile } from "../stats.ts";

/** What one grid point's timing found. */
export interface Timing {
  /** Median milliseconds of one attention call. */
  readonly ms: number;
  /** Fastest call, milliseconds. */
  readonly minMs: number;
  readonly samples: number;
  /** How the time was taken, for the results file. */
  readonly method: string;
  /** GPU timestamps' share of the wall clock, when they timed it. */
  readonly clockCoverage?: number;
}

/** How many calls, and for how long, one grid point is timed. */
export interface TimingBudget {
  /** Least timed calls. */
  readonly repeat: number;
  /** Least timed milliseconds. */
  readonly minTimeMs: number;
}

/** Most timed calls per grid point (tiny calls stop here). */
export const MAX_SAMPLES = 1000;

/** Throws when an output holds NaN or infinity: a broken run, not a figure. */
export function assertFinite(out: Float32Array, what: string): void {
  const bad = out.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) {
    throw new Error(
      `${what} wrote ${
        out[bad]
      } at output element ${bad}: the kernel is broken for this case; run the conformance suite for it`,
    );
  }
}

/** Times `attend()` after one warm-up call (which also checks the output). */
export async function timeAttend(
  backend: AttentionBackend,
  cache: LayerCache,
  batch: PlannedBatch,
  query: Float32Array,
  budget: TimingBudget,
): Promise<Timing> {
  const plan = withPlan(backend).plan(batch);
  const out = new Float32Array(query.length);
  await backend.attend(cache, plan, { query, out });
  assertFinite(out, `${backend.name}/${backend.target}`);
  const samples: number[] = [];
  let total = 0;
  while (
    samples.length < MAX_SAMPLES &&
    (samples.length < budget.repeat || total < budget.minTimeMs)
  ) {
    const start = performance.now();
    await backend.attend(cache, plan, { query, out });
    const ms = performance.now() - start;
    samples.push(ms);
    total += ms;
  }
  return {
    ms: percentile(samples, 50),
    minMs: Math.min(...samples),
    samples: samples.length,
    method: hostMethod(backend.target),
  };
}

function hostMethod(target: Target): string {
  return target === "webgpu"
    ? "attend() wall clock, including Q upload and output read-back"
    : "attend() wall clock";
}
