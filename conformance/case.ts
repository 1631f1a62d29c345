/**
 * What a conformance case is, what it is given, and how it ends.
 *
 * @module
 */

import {
  BACKEND_MEMBERS,
  type BackendTarget,
  type CreateBackendOptions,
} from "../core/backend.ts";
import type { PlanningBackend } from "../core/plan_fallback.ts";

/**
 * What the suite can be doing when a case ends: probing or creating the
 * instance, a backend member, or `case` for the suite's own code between
 * backend calls.
 */
export const PHASES = [
  "probe",
  "create",
  ...BACKEND_MEMBERS,
  "case",
] as const;

/** One of {@linkcode PHASES}. */
export type Phase = typeof PHASES[number];

/** How one case ended. `skipped` always carries its reason. */
export type CaseStatus = "passed" | "failed" | "skipped";

/** What a case's run receives. */
export interface CaseContext {
  /** The backend instance shared by the target's cases. */
  readonly backend: PlanningBackend;
  /** The target entry the backend came from (capabilities, extraReasons). */
  readonly target: BackendTarget;
  /** Seeded from the run seed and the case address. */
  readonly rand: () => number;
  /** The case's own seed: the run seed mixed with the case address. */
  readonly seed: number;
  /** A fresh instance, for cases that dispose one. */
  createBackend(options?: CreateBackendOptions): Promise<PlanningBackend>;
}

/** Numbers a case measured (max errors, lengths), kept in the report. */
export type CaseMetrics = Record<string, number>;

/** One case: an address, and either a reason to skip or a run. */
export interface ConformanceCase {
  /** `group:key=value;...`, unique, usable with --filter. */
  readonly address: string;
  /** Set when the backend does not declare what the case needs. */
  readonly skip?: string;
  /** Long-context or large-memory cases, run only with `long: true`. */
  readonly long?: boolean;
  /** Checks stored codes through readCache: skipped for a backend without one. */
  readonly needsReadCache?: boolean;
  /** Throws {@linkcode ConformanceFailure} (or any error) to fail. */
  run(context: CaseContext): Promise<CaseMetrics | void>;
}

/** The result of one case. */
export interface CaseResult {
  /** The case's address, usable with --filter. */
  readonly address: string;
  /** How it ended. */
  readonly status: CaseStatus;
  /** Skip reason or failure message. */
  readonly message?: string;
  /** What the case measured (max errors, lengths), when it passed. */
  readonly metrics?: CaseMetrics;
  /** Wall time of the case, milliseconds. */
  readonly ms: number;
  /** The expectations file lists this case as a known failure. */
  readonly expectedFailure?: boolean;
  /** For a failure: the phase in progress when it failed or timed out. */
  readonly phase?: Phase;
  /** For a failure that timed out: true. */
  readonly timedOut?: boolean;
}

/** A check that did not hold; the message says what, where and by how much. */
export class ConformanceFailure extends Error {
  /** Takes the message (what, where, by how much) and an optional cause. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConformanceFailure";
  }
}

/**
 * Thrown (by the suite, never by a check) to end a case as skipped: the
 * backend refused a layer that its own `extraReasons()` names.
 */
export class CaseSkip extends Error {
  /** Takes the skip reason. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CaseSkip";
  }
}

/**
 * A 32-bit hash of a string (FNV-1a), to derive a case's seed from its
 * address so that one case can be rerun alone with the same data.
 *
 * @example Usage
 * ```ts
 * import { hashString } from "./case.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(hashString("a"), hashString("a"));
 * assert.notEqual(hashString("a"), hashString("b"));
 * ```
 */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
