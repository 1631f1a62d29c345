/**
 * The suite as Deno tests, for a third party's own test file:
 *
 * ```ts ignore
 * import { registerConformanceTests } from "jsr-or-path/mod.ts";
 * import myBackend from "./my_backend.ts";
 * await registerConformanceTests(myBackend);
 * ```
 *
 * Each case is one test named by its address; skipped cases are ignored
 * tests whose names carry the reason. The test function is injectable (as
 * ESLint's RuleTester lets you bring your own runner).
 *
 * @module
 */

import type {
  AttentionBackend,
  BackendDefinition,
  Target,
} from "../core/backend.ts";
import {
  conformanceCases,
  type Expectations,
  reproduceCommand,
  staticSkip,
} from "./runner.ts";
import { addressMatches } from "./params.ts";
import { caseTimeoutMs, runOneCase } from "./run_case.ts";
import { disposeWithin, targetSetup } from "./target_setup.ts";
import { NeedsReadCache } from "./write_cases.ts";

/** A Deno.test-shaped function. */
export type TestFunction = (definition: {
  name: string;
  ignore?: boolean;
  fn: () => Promise<void>;
  sanitizeResources?: boolean;
  sanitizeOps?: boolean;
}) => void;

/** Options for {@linkcode registerConformanceTests}. */
export interface RegisterOptions {
  /** The function that registers one test (ESLint RuleTester-style injection). @default Deno.test */
  readonly test?: TestFunction;
  /** Targets to run; one asked for but absent or not shipped is a failing test. @default every target the definition ships */
  readonly targets?: readonly Target[];
  /** Register only cases whose address matches (substring, or glob with *). */
  readonly filter?: string;
  /** The data seed; a case's own seed mixes it with the case address. @default 1 */
  readonly seed?: number;
  /** Include long-context and large-memory cases. @default false */
  readonly long?: boolean;
  /** Known failures: address -> why. */
  readonly expectations?: Expectations;
  /**
   * Per-case deadline in milliseconds (long-tier cases get 10 times more);
   * 0 for none. @default 60000
   */
  readonly timeoutMs?: number;
}

/**
 * Probes each target and registers one test per case. Absent targets give
 * one ignored test that says why (a failing one when `targets` names them);
 * when no case would run at all (a filter that matches nothing, every
 * target absent, everything skipped), one failing test says so.
 *
 * @example Usage
 * ```ts
 * import { registerConformanceTests } from "./register.ts";
 * import referenceBackend from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const names: string[] = [];
 * await registerConformanceTests(referenceBackend, { test: (t) => names.push(t.name), filter: "contract:dispose" });
 * assert.deepEqual(names, ["conformance reference/reference contract:dispose"]);
 *
 * const typo: string[] = [];
 * await registerConformanceTests(referenceBackend, { test: (t) => typo.push(t.name), filter: "contract:dipose" });
 * assert.deepEqual(typo, ["conformance reference: no case runs"]);
 * ```
 */
export async function registerConformanceTests(
  definition: BackendDefinition,
  options: RegisterOptions = {},
): Promise<void> {
  const test = options.test ?? Deno.test;
  const seed = options.seed ?? 1;
  const long = options.long ?? false;
  const failing = (name: string, message: string) =>
    test({
      name,
      fn: () => Promise.reject(new Error(message)),
    });
  const problems: string[] = [];
  let runnableTotal = 0;
  const shipped = definition.targets.map((t) => t.target);
  for (const wanted of options.targets ?? []) {
    if (!shipped.includes(wanted)) {
      failing(
        `conformance ${definition.name}/${wanted} (not shipped)`,
        `target ${wanted} was asked for, but backend ${definition.name} ships only ${
          shipped.join(", ")
        }: pick one of those`,
      );
    }
  }
  for (const t of definition.targets) {
    if (options.targets && !options.targets.includes(t.target)) continue;
    const prefix = `conformance ${definition.name}/${t.target}`;
    // Created now, not lazily: whether it has readCache decides which
    // cases are ignored.
    const setup = await targetSetup(
      definition.name,
      t,
      options.timeoutMs,
      conformanceCases,
    );
    if (!setup.ok) {
      if (options.targets || setup.problem) {
        failing(
          `${prefix} (absent)`,
          setup.problem ??
            `target ${t.target} was asked for but is absent: ${setup.reason}`,
        );
      } else {
        test({
          name: `${prefix} (ignored: ${setup.reason})`,
          ignore: true,
          fn: async () => {},
        });
      }
      problems.push(`${t.target}: ${setup.reason}`);
      continue;
    }
    let shared: AttentionBackend = setup.backend;
    const cases = setup.cases.filter((c) =>
      options.filter === undefined || addressMatches(c.address, options.filter)
    );
    if (cases.length === 0 && options.filter !== undefined) {
      problems.push(
        `${t.target}: --filter '${options.filter}' matches no case`,
      );
    }
    const skipOf = (c: (typeof cases)[number]) =>
      staticSkip(c, long, "pass long: true") ??
        (c.address.startsWith("write:") && !shared.readCache
          ? new NeedsReadCache().message
          : undefined);
    const runnable = cases.filter((c) => skipOf(c) === undefined);
    runnableTotal += runnable.length;
    if (runnable.length === 0) await shared.dispose();
    for (const c of cases) {
      const skip = skipOf(c);
      test({
        name: skip
          ? `${prefix} ${c.address} (ignored: ${skip})`
          : `${prefix} ${c.address}`,
        ignore: skip !== undefined,
        // Backends may hold GPU devices and thread pools across cases.
        sanitizeResources: false,
        sanitizeOps: false,
        fn: async () => {
          try {
            const outcome = await runOneCase(c, {
              backend: shared,
              target: t,
              backendName: definition.name,
              seed,
              timeoutMs: caseTimeoutMs(c, options.timeoutMs),
            });
            if (outcome.timedOut) {
              // The timed-out call may still run: leave that instance alone
              // and give the next cases a fresh one.
              const fresh = await targetSetup(
                definition.name,
                t,
                options.timeoutMs,
                () => [],
              );
              if (fresh.ok) shared = fresh.backend;
            }
            const listed = options.expectations?.[c.address] !== undefined;
            if (outcome.status === "skipped") {
              console.log(
                `${prefix} ${c.address}: skipped: ${outcome.message}`,
              );
              return;
            }
            if (outcome.status === "passed") {
              if (listed) throw new KnownFailurePassed(c.address);
              return;
            }
            if (listed) return;
            throw new Error(
              `${outcome.message}\n  reproduce: ${
                reproduceCommand(
                  definition.name,
                  t.target,
                  c.address,
                  seed,
                  c.long ?? false,
                )
              }`,
              { cause: outcome.error },
            );
          } finally {
            if (c === runnable.at(-1)) {
              const problem = await disposeWithin(
                definition.name,
                t.target,
                shared,
                options.timeoutMs,
              );
              if (problem) console.error(problem);
            }
          }
        },
      });
    }
  }
  if (runnableTotal === 0) {
    failing(
      `conformance ${definition.name}: no case runs`,
      `no conformance case of backend ${definition.name} would run (${
        problems.join("; ") || "every case is skipped"
      }): a run that checks nothing is not conformant`,
    );
  }
}

/** A case listed as a known failure passed: the list is out of date. */
class KnownFailurePassed extends Error {
  constructor(address: string) {
    super(
      `${address} is listed as a known failure but passed: remove it from the expectations`,
    );
    this.name = "KnownFailurePassed";
  }
}
