/**
 * Runs one case the same way for `runConformance` and
 * `registerConformanceTests`: seeded from the run seed and the address,
 * through a traced backend, under a deadline that names the phase in
 * progress when it passes.
 *
 * @module
 */

import type { AttentionBackend, BackendTarget } from "../core/backend.ts";
import { mulberry32 } from "../core/prng.ts";
import { withPlan } from "../core/plan_fallback.ts";
import {
  type CaseMetrics,
  CaseSkip,
  type CaseStatus,
  type ConformanceCase,
  ConformanceFailure,
  hashString,
  type Phase,
} from "./case.ts";
import { extraReasonsFor } from "./reasons.ts";
import {
  BackendCallError,
  describeFailure,
  PhaseTracker,
  traceBackend,
} from "./traced_backend.ts";
import { NeedsReadCache } from "./write_cases.ts";

/** Per-case deadline when none is given: generous, so only hangs trip it. */
export const DEFAULT_TIMEOUT_MS = 60_000;
/** Long-tier cases (32k tokens, 2^31-element caches) get this many times more. */
export const LONG_TIMEOUT_FACTOR = 10;

/** A case ran past its deadline. */
export class CaseTimeout extends Error {
  /** The phase in progress at the deadline. */
  readonly phase: Phase;
  /** Takes the full message and the phase in progress. */
  constructor(message: string, phase: Phase) {
    super(message);
    this.name = "CaseTimeout";
    this.phase = phase;
  }
}

/** What {@linkcode runOneCase} needs. */
export interface RunCaseOptions {
  /** The instance the target's cases share (untraced). */
  readonly backend: AttentionBackend;
  /** The target the instance belongs to (its extraReasons are honoured). */
  readonly target: BackendTarget;
  /** The backend's name, for messages. */
  readonly backendName: string;
  /** The run seed; the case's own seed mixes in its address. */
  readonly seed: number;
  /** Milliseconds; 0 or Infinity for none. */
  readonly timeoutMs: number;
  /** Told each phase change (a watchdog for synchronous hangs listens). */
  readonly onPhase?: (phase: Phase) => void;
}

/** How one case ended, before expectations are applied. */
export interface CaseOutcome {
  /** passed, failed or skipped. */
  readonly status: CaseStatus;
  /** Skip reason or failure message (with the backend's stack). */
  readonly message?: string;
  /** What the case measured, when it passed. */
  readonly metrics?: CaseMetrics;
  /** Wall time of the case. */
  readonly ms: number;
  /** For a failure: the phase in progress. */
  readonly phase?: Phase;
  /** For a failure: true when it ran past its deadline. */
  readonly timedOut?: boolean;
  /** For a failure: what was thrown. */
  readonly error?: unknown;
}

/**
 * The case's deadline in milliseconds (long-tier cases get
 * {@linkcode LONG_TIMEOUT_FACTOR} times more).
 *
 * @example Usage
 * ```ts
 * import { caseTimeoutMs } from "./run_case.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(caseTimeoutMs({ long: true }, 1000), 10_000);
 * assert.equal(caseTimeoutMs({}, undefined), 60_000);
 * ```
 */
export function caseTimeoutMs(
  c: Pick<ConformanceCase, "long">,
  timeoutMs: number | undefined,
): number {
  const base = timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return c.long ? base * LONG_TIMEOUT_FACTOR : base;
}

/**
 * Runs a case that is not skipped, and says how it ended; it never throws.
 *
 * @example Usage
 * ```ts
 * import { runOneCase } from "./run_case.ts";
 * import reference from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const target = reference.targets[0];
 * const outcome = await runOneCase(
 *   { address: "demo:hang", run: () => new Promise(() => {}) },
 *   { backend: await target.create(), target, backendName: "reference", seed: 1, timeoutMs: 50 },
 * );
 * assert.equal(outcome.status, "failed");
 * assert.match(outcome.message!, /demo:hang timed out after 0.05 s .* in phase case/);
 * ```
 */
export async function runOneCase(
  c: ConformanceCase,
  o: RunCaseOptions,
): Promise<CaseOutcome> {
  const caseSeed = (o.seed ^ hashString(c.address)) >>> 0;
  const tracker = new PhaseTracker();
  if (o.onPhase) tracker.onChange = o.onPhase;
  const site = { backend: o.backendName, target: o.target.target };
  const extraReasons = o.target.extraReasons
    ? (layer: Parameters<typeof extraReasonsFor>[1]) =>
      extraReasonsFor(o.target, layer)
    : undefined;
  const trace = <B extends AttentionBackend>(b: B, address: string) =>
    traceBackend(b, { ...site, address }, {
      tracker,
      ...(extraReasons ? { extraReasons } : {}),
    });
  const start = performance.now();
  const running = Promise.resolve().then(() =>
    c.run({
      backend: trace(withPlan(o.backend), c.address),
      target: o.target,
      rand: mulberry32(caseSeed),
      seed: caseSeed,
      createBackend: async (options) => {
        tracker.enter("create");
        try {
          return trace(withPlan(await o.target.create(options)), c.address);
        } catch (error) {
          throw new BackendCallError(
            { ...site, address: c.address },
            "create",
            error,
          );
        } finally {
          tracker.leave("create");
        }
      },
    })
  );
  // A run that loses the race may still reject later: nobody awaits it then.
  running.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = o.timeoutMs > 0 && o.timeoutMs < Infinity
    ? new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const phase = tracker.current;
        reject(
          new CaseTimeout(
            `${c.address} timed out after ${
              o.timeoutMs / 1000
            } s on backend ${o.backendName}, target ${o.target.target}, in phase ${tracker.describe()}: ${
              phase === "case"
                ? "the suite's own code did not finish (a backend promise it awaits may never settle)"
                : `${phase}() never returned`
            }; if the backend is only slow, raise the limit (--timeout SECONDS, or timeoutMs)`,
            phase,
          ),
        );
      }, o.timeoutMs);
    })
    : undefined;
  try {
    const metrics = await (limit ? Promise.race([running, limit]) : running);
    return {
      status: "passed",
      ms: performance.now() - start,
      ...(metrics ? { metrics } : {}),
    };
  } catch (error) {
    const ms = performance.now() - start;
    if (error instanceof NeedsReadCache) {
      return { status: "skipped", message: error.message, ms };
    }
    if (error instanceof CaseSkip) {
      return {
        status: "skipped",
        message: `refused by the target's extraReasons: ${error.message}`,
        ms,
      };
    }
    // A failed check is the suite's verdict, not a backend call gone wrong:
    // its message says what differs, and no phase is named.
    const phase = error instanceof CaseTimeout
      ? error.phase
      : error instanceof BackendCallError
      ? error.phase
      : error instanceof ConformanceFailure
      ? undefined
      : tracker.current;
    return {
      status: "failed",
      message: describeFailure(error),
      ms,
      ...(phase ? { phase } : {}),
      ...(error instanceof CaseTimeout ? { timedOut: true } : {}),
      error,
    };
  } finally {
    clearTimeout(timer);
  }
}
