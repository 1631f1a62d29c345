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

import type { BackendDefinition, Target } from "../core/backend.ts";
import {
  type Expectations,
  noCaseProblem,
  notShippedProblems,
  type PlannedCase,
  prepareTarget,
} from "./runner.ts";
import { withSettings } from "./settings.ts";

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
  /**
   * Backend settings for every instance the suite creates, on each target
   * that takes them; a case's own settings are merged over them. @default {}
   */
  readonly settings?: Readonly<Record<string, unknown>>;
}

/**
 * Probes each target and registers one test per case. Absent targets give
 * one ignored test that says why (a failing one when `targets` names them);
 * when no case would run at all (a filter that matches nothing, every
 * target absent, everything skipped), one failing test says so.
 *
 * A thin adapter over the runner ({@linkcode prepareTarget}): which cases
 * are skipped and why, how a case runs, when it fails and with what message
 * (the one `deno task conformance` prints, with its reproduce command) are
 * all decided there; a test throws exactly when the runner would count the
 * case against the run.
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
  definition = withSettings(definition, options.settings ?? {});
  const test = options.test ?? Deno.test;
  const failing = (name: string, message: string) =>
    test({
      name,
      fn: () => Promise.reject(new Error(message)),
    });
  const problems: string[] = [];
  let matched = 0;
  let runnable = 0;
  let anyAvailable = false;
  const unshipped = notShippedProblems(definition, options.targets);
  const shipped = definition.targets.map((t) => t.target);
  for (const wanted of options.targets ?? []) {
    if (shipped.includes(wanted)) continue;
    failing(
      `conformance ${definition.name}/${wanted} (not shipped)`,
      unshipped.find((p) => p.startsWith(`target ${wanted} `))!,
    );
  }
  problems.push(...unshipped);
  for (const t of definition.targets) {
    if (options.targets && !options.targets.includes(t.target)) continue;
    const prefix = `conformance ${definition.name}/${t.target}`;
    // Prepared now, not lazily: whether the instance has readCache decides
    // which cases are ignored.
    const prepared = await prepareTarget(definition, t, {
      ...(options.filter !== undefined ? { filter: options.filter } : {}),
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      ...(options.long !== undefined ? { long: options.long } : {}),
      ...(options.expectations ? { expectations: options.expectations } : {}),
      ...(options.timeoutMs !== undefined
        ? { timeoutMs: options.timeoutMs }
        : {}),
      // For the reproduce command: the definition already has them.
      ...(options.settings ? { settings: options.settings } : {}),
      required: options.targets !== undefined,
      longHint: "pass long: true",
    });
    if (!prepared.available) {
      if (prepared.problem) {
        failing(`${prefix} (absent)`, prepared.problem);
      } else {
        test({
          name: `${prefix} (ignored: ${prepared.reason})`,
          ignore: true,
          fn: async () => {},
        });
      }
      problems.push(`${t.target}: ${prepared.reason}`);
      continue;
    }
    anyAvailable = true;
    matched += prepared.cases.length;
    const toRun = prepared.cases.filter((c) => c.skip === undefined);
    runnable += toRun.length;
    if (toRun.length === 0) {
      const problem = await prepared.finish();
      if (problem) failing(`${prefix} (dispose)`, problem);
    }
    const last: PlannedCase | undefined = toRun.at(-1);
    for (const c of prepared.cases) {
      test({
        name: c.skip
          ? `${prefix} ${c.address} (ignored: ${c.skip})`
          : `${prefix} ${c.address}`,
        ignore: c.skip !== undefined,
        // Backends may hold GPU devices and thread pools across cases.
        sanitizeResources: false,
        sanitizeOps: false,
        fn: async () => {
          const { result, unexpected, error } = await prepared.runOne(c);
          // The instance is released after the last case that runs; a
          // dispose() that fails or hangs fails that test, as it fails a
          // CLI run.
          const disposeProblem = c === last
            ? await prepared.finish()
            : undefined;
          if (result.status === "skipped") {
            console.log(`${prefix} ${c.address}: skipped: ${result.message}`);
          }
          const message = [unexpected, disposeProblem].filter((m) =>
            m !== undefined
          ).join("\n");
          if (message !== "") throw new Error(message, { cause: error });
        },
      });
    }
  }
  if (runnable === 0) {
    failing(
      `conformance ${definition.name}: no case runs`,
      `no conformance case of backend ${definition.name} would run: ${
        noCaseProblem(options.filter, matched, anyAvailable)
      }${problems.length > 0 ? ` (${problems.join("; ")})` : ""}`,
    );
  }
}
