/**
 * Getting a target ready (probe, cases, the shared instance) and releasing
 * it, each under a deadline, with failures turned into messages that name
 * the backend, the target and the member.
 *
 * @module
 */

import type {
  AttentionBackend,
  BackendTarget,
  Target,
} from "../core/backend.ts";
import type { ConformanceCase } from "./case.ts";
import { DEFAULT_TIMEOUT_MS } from "./run_case.ts";

/** A target ready to run, or why not. */
export type TargetSetup =
  | {
    readonly ok: true;
    readonly backend: AttentionBackend;
    readonly cases: ConformanceCase[];
  }
  | {
    readonly ok: false;
    /** Shown beside the target in the summary. */
    readonly reason: string;
    /** Set when this is a failure even if the target was not asked for. */
    readonly problem?: string;
  };

/**
 * Probes a target, creates its shared instance and builds its cases, each
 * under the deadline; an absent target is `ok: false` with the probe's
 * reason (a probe that throws or hangs included), and a create or case
 * builder that throws or hangs is a problem.
 */
export async function targetSetup(
  backendName: string,
  t: BackendTarget,
  timeoutMs: number | undefined,
  buildCases: (t: BackendTarget) => ConformanceCase[],
): Promise<TargetSetup> {
  const limit = timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const where = `backend ${backendName} on target ${t.target}`;
  let availability;
  try {
    availability = await within(limit, () => t.probe(), `probe() of ${where}`);
  } catch (error) {
    // As before: a probe that throws makes the target absent (an error
    // only when the target was asked for).
    return { ok: false, reason: `probe failed: ${(error as Error).message}` };
  }
  if (!availability.available) {
    return { ok: false, reason: availability.reason };
  }
  let cases: ConformanceCase[];
  try {
    cases = buildCases(t);
  } catch (error) {
    const reason = `building the cases failed: ${(error as Error).message}`;
    return {
      ok: false,
      reason,
      problem:
        `${reason} (${where}; does extraReasons() throw for some layer?)`,
    };
  }
  try {
    const backend = await within(
      limit,
      () => t.create(),
      `create() of ${where}`,
    );
    return { ok: true, backend, cases };
  } catch (error) {
    const e = error as Error;
    const reason = e.message.startsWith("create()")
      ? e.message
      : `create() of ${where} threw: ${e.name}: ${e.message}`;
    return { ok: false, reason, problem: reason };
  }
}

/** Disposes an instance under the deadline; returns the problem, if any. */
export async function disposeWithin(
  backendName: string,
  target: Target,
  backend: AttentionBackend,
  timeoutMs: number | undefined,
): Promise<string | undefined> {
  const where = `dispose() of backend ${backendName} on target ${target}`;
  try {
    await within(
      timeoutMs ?? DEFAULT_TIMEOUT_MS,
      () => backend.dispose(),
      where,
    );
    return undefined;
  } catch (error) {
    const e = error as Error;
    return e.message.startsWith(where)
      ? e.message
      : `${where} threw: ${e.name}: ${e.message}`;
  }
}

/** Awaits `fn()`, or rejects after `ms` (0: no limit) naming `what`. */
export async function within<T>(
  ms: number,
  fn: () => T | Promise<T>,
  what: string,
): Promise<T> {
  const running = Promise.resolve().then(fn);
  if (!(ms > 0 && ms < Infinity)) return await running;
  running.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      running,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `${what} did not return within ${
                  ms / 1000
                } s: raise the limit with --timeout SECONDS if it is only slow`,
              ),
            ),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
