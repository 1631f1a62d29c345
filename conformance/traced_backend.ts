/**
 * The backend as cases see it: a transparent proxy that records which
 * member is running (the phase a timeout reports) and turns any exception
 * a member throws into a {@linkcode BackendCallError} that names the
 * backend, target, case and phase, with the original error (and its stack)
 * as the cause. Members, optional ones included, keep their presence and
 * their sync or async shape; returned objects pass through unchanged.
 *
 * @module
 */

import {
  type AttentionBackend,
  BACKEND_MEMBERS,
  type Target,
} from "../core/backend.ts";
import type { LayerConfig } from "../core/layer.ts";
import { CaseSkip, type Phase } from "./case.ts";

/** Where a call happened, for messages. */
export interface CallSite {
  /** The backend's name. */
  readonly backend: string;
  /** The target the instance runs on. */
  readonly target: Target;
  /** The case address, or a description such as `(creating the instance)`. */
  readonly address: string;
}

/** A backend member threw; `cause` is what it threw. */
export class BackendCallError extends Error {
  /** Backend, target and case. */
  readonly site: CallSite;
  /** The member that threw. */
  readonly phase: Phase;
  /** Names the call; `cause` keeps what the backend threw, stack included. */
  constructor(site: CallSite, phase: Phase, cause: unknown) {
    const what = cause instanceof Error
      ? `${cause.name}: ${cause.message}`
      : String(cause);
    super(
      `${phase}() of backend ${site.backend} on target ${site.target} threw during case ${site.address}: ${what}`,
      { cause },
    );
    this.name = "BackendCallError";
    this.site = site;
    this.phase = phase;
  }
}

/** Records the phase in progress; the runner reads it when a case ends. */
export class PhaseTracker {
  #running: Phase[] = [];
  #last: Phase | undefined;
  /** Called on every change, e.g. to tell a watchdog. */
  onChange?: (phase: Phase) => void;

  /** The innermost member still running, else `case`. */
  get current(): Phase {
    return this.#running.at(-1) ?? "case";
  }

  /** Words for messages: `attend`, or `case (suite code, after attend)`. */
  describe(): string {
    const now = this.current;
    return now === "case" && this.#last
      ? `case (suite code, after ${this.#last})`
      : now;
  }

  /** A member started. */
  enter(phase: Phase): void {
    this.#running.push(phase);
    this.#last = phase;
    this.onChange?.(phase);
  }

  /** A member returned or threw. */
  leave(phase: Phase): void {
    const i = this.#running.lastIndexOf(phase);
    if (i >= 0) this.#running.splice(i, 1);
    this.onChange?.(this.current);
  }
}

// Backend members: the phases a call can be in (not probe, create or case).
const MEMBERS: ReadonlySet<string> = new Set<string>(BACKEND_MEMBERS);

/** Options for {@linkcode traceBackend}. */
export interface TraceOptions {
  /** Shared with the runner, which reads the phase on a timeout. @default a new one */
  readonly tracker?: PhaseTracker;
  /**
   * The target's `extraReasons`: when createCache throws for a layer these
   * refuse, the case is skipped with those reasons (the backend declared
   * the limit), instead of failing.
   */
  readonly extraReasons?: (layer: LayerConfig) => readonly string[];
}

/**
 * Wraps a backend for one case.
 *
 * @example Usage
 * ```ts
 * import { BackendCallError, PhaseTracker, traceBackend } from "./traced_backend.ts";
 * import { createReferenceBackend } from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const tracker = new PhaseTracker();
 * const backend = traceBackend(
 *   createReferenceBackend(),
 *   { backend: "reference", target: "reference", address: "contract:x" },
 *   { tracker },
 * );
 * assert.equal(typeof backend.readCache, "function");
 * const error = (() => {
 *   try {
 *     backend.copyBlocks({ numBlocks: 1 } as never, Int32Array.of(0));
 *   } catch (e) {
 *     return e;
 *   }
 * })();
 * assert.ok(error instanceof BackendCallError);
 * // A cache the instance did not create: the core guard refuses it.
 * assert.match(error.message, /^copyBlocks\(\) of backend reference on target reference threw during case contract:x: ForeignHandleError/);
 * assert.equal(tracker.describe(), "case (suite code, after copyBlocks)");
 * ```
 */
export function traceBackend<B extends AttentionBackend>(
  backend: B,
  site: CallSite,
  options: TraceOptions = {},
): B {
  const tracker = options.tracker ?? new PhaseTracker();
  const wrapped = new Map<string, unknown>();
  const fail = (phase: Phase, args: unknown[], error: unknown): never => {
    if (error instanceof BackendCallError || error instanceof CaseSkip) {
      throw error;
    }
    if (phase === "createCache" && options.extraReasons) {
      const extra = options.extraReasons(args[0] as LayerConfig);
      if (extra.length > 0) {
        throw new CaseSkip(extra.join("; "), { cause: error });
      }
    }
    throw new BackendCallError(site, phase, error);
  };
  return new Proxy(backend, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof property !== "string" || !MEMBERS.has(property)) return value;
      if (typeof value !== "function") return value;
      if (wrapped.has(property)) return wrapped.get(property);
      const phase = property as Phase;
      const call = (...args: unknown[]) => {
        tracker.enter(phase);
        let result: unknown;
        try {
          result = Reflect.apply(value, target, args);
        } catch (error) {
          tracker.leave(phase);
          return fail(phase, args, error);
        }
        if (typeof (result as Promise<unknown>)?.then === "function") {
          return (result as Promise<unknown>).then(
            (v) => (tracker.leave(phase), v),
            (error) => (tracker.leave(phase), fail(phase, args, error)),
          );
        }
        tracker.leave(phase);
        return result;
      };
      wrapped.set(property, call);
      return call;
    },
  });
}

/**
 * A failure's message with the backend's own stack (the cause's), trimmed
 * to the frames that matter, so the summary points into the author's file.
 *
 * @example Usage
 * ```ts
 * import { describeFailure } from "./traced_backend.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(describeFailure(new Error("x")), "Error: x");
 * ```
 */
export function describeFailure(error: unknown, frames = 8): string {
  if (!(error instanceof Error)) return String(error);
  if (!(error instanceof BackendCallError)) {
    return `${error.name}: ${error.message}`;
  }
  const cause = error.cause;
  const stack = cause instanceof Error && cause.stack
    ? cause.stack.split("\n")
      // The proxy's own frame says nothing about the backend.
      .filter((l) => /^\s+at /.test(l) && !l.includes("traced_backend.ts"))
      .slice(0, frames)
    : [];
  return stack.length > 0
    ? `${error.message}\n  backend stack:\n${
      stack.map((l) => `    ${l.trim()}`).join("\n")
    }`
    : error.message;
}
