/**
 * Runs the suite against one backend definition, target by target, and
 * returns a report. Everything a user sees (progress, tables, JSON) is built
 * from this report.
 *
 * @module
 */

import type {
  AttentionBackend,
  BackendDefinition,
  BackendTarget,
  Target,
} from "../core/backend.ts";
import type { BackendCapabilities } from "../core/capabilities.ts";
import { attendCases } from "./attend_cases.ts";
import type { CaseResult, ConformanceCase, Phase } from "./case.ts";
import { contractCases } from "./contract_cases.ts";
import { incrementalCases } from "./incremental_cases.ts";
import { lowPrecisionCases } from "./low_precision_cases.ts";
import { oneHotCases } from "./one_hot_cases.ts";
import { addressMatches } from "./params.ts";
import { asCaseTarget, type CaseTarget } from "./reasons.ts";
import { type CaseOutcome, caseTimeoutMs, runOneCase } from "./run_case.ts";
import { disposeWithin, targetSetup } from "./target_setup.ts";
import { withSettings } from "./settings.ts";
import { NeedsReadCache, writeCases } from "./write_cases.ts";

/** Known failures: address -> why. A listed case that passes is reported. */
export type Expectations = Readonly<Record<string, string>>;

/**
 * Told when each case starts and ends and of every phase change, e.g. a
 * watchdog that must report a case that blocks the event loop.
 */
export interface CaseObserver {
  /** A case starts; `timeoutMs` is its deadline (0 for none). */
  start(info: {
    readonly target: Target;
    readonly address: string;
    readonly timeoutMs: number;
    readonly reproduce: string;
  }): void;
  /** The phase in progress changed (a backend member started or returned). */
  phase(phase: Phase): void;
  /** The case ended (any way). */
  end(): void;
}

/** Options for {@linkcode runConformance}. */
export interface ConformanceOptions {
  /** Targets to run; others are skipped. @default every target the definition ships */
  readonly targets?: readonly Target[];
  /** Run only cases whose address matches (substring, or glob with *). */
  readonly filter?: string;
  /** The data seed; a case's own seed mixes it with the case address. @default 1 */
  readonly seed?: number;
  /** Include long-context and large-memory cases. @default false */
  readonly long?: boolean;
  /** Known failures (address -> why): reported as xfail, not failures. */
  readonly expectations?: Expectations;
  /** Called after each case (progress). */
  readonly onResult?: (target: Target, result: CaseResult) => void;
  /** How a user reruns one case: `--backend X` part of the command. @default the backend name */
  readonly backendArg?: string;
  /**
   * Per-case deadline in milliseconds (long-tier cases get 10 times more);
   * 0 for none. A case past it fails, naming the phase in progress.
   * @default 60000
   */
  readonly timeoutMs?: number;
  /** Told of each case's start, phases and end. */
  readonly observer?: CaseObserver;
  /**
   * Backend settings (`--backend-setting`) for every instance the suite
   * creates, on each target that takes them; a case's own settings are
   * merged over them (conformance/settings.ts). @default {}
   */
  readonly settings?: Readonly<Record<string, unknown>>;
}

/** One target's results. */
export interface TargetReport {
  /** The target these results are for. */
  readonly target: Target;
  /** Absent targets are skipped whole, with the reason. */
  readonly available: boolean;
  /** Why the target is absent (its probe's words); set when not available. */
  readonly reason?: string;
  /** A target asked for explicitly but absent is an error. */
  readonly required: boolean;
  /** Every case, in suite order, run or skipped. */
  readonly results: readonly CaseResult[];
}

/** The whole run. */
export interface ConformanceReport {
  /** The definition's name. */
  readonly backend: string;
  /** The definition's version. */
  readonly version: string;
  /** The data seed the run used: with it, any case reruns on the same data. */
  readonly seed: number;
  /** Whether the long tier ran. */
  readonly long: boolean;
  /** One entry per target the definition ships (or that was asked for). */
  readonly targets: readonly TargetReport[];
  /**
   * Why the run as a whole fails beyond its cases: no case ran, a filter
   * that matches nothing, a requested target absent or not shipped, an
   * instance that could not be created or disposed.
   */
  readonly problems: readonly string[];
  /**
   * Failed cases that the expectations file does not list, plus one per
   * problem. Zero means conformant for every case run.
   */
  readonly unexpectedFailures: number;
  /** Listed as known failures but passed: remove them from the file. */
  readonly unexpectedPasses: readonly string[];
}

/**
 * Every case for a target (its capabilities and extra reasons), in a
 * stable order. Bare capabilities are accepted too.
 */
export function conformanceCases(
  target: CaseTarget | BackendCapabilities,
): ConformanceCase[] {
  const t = asCaseTarget(target);
  return [
    ...writeCases(t),
    ...oneHotCases(t),
    ...attendCases(t),
    ...contractCases(t),
    ...incrementalCases(t),
    ...lowPrecisionCases(t),
  ];
}

/**
 * The command that reruns one case with the same data: the same backend,
 * target, case, seed, tier and `--backend-setting` flags (settings change
 * what the kernels compute, so a rerun without them may not fail).
 *
 * @example Usage
 * ```ts
 * import { reproduceCommand } from "./runner.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   reproduceCommand("fa3", "native", "attend:decode", 7, false, {
 *     accumulationPromotion: false,
 *     label: "two words",
 *   }),
 *   "deno task conformance --backend fa3 --target native --filter 'attend:decode' --seed 7 --backend-setting accumulationPromotion=false --backend-setting 'label=two words'",
 * );
 * ```
 */
export function reproduceCommand(
  backendArg: string,
  target: Target,
  address: string,
  seed: number,
  long: boolean,
  settings: Readonly<Record<string, unknown>> = {},
): string {
  const flags = Object.entries(settings).map(([name, value]) =>
    ` --backend-setting ${shellWord(`${name}=${String(value)}`)}`
  ).join("");
  return `deno task conformance --backend ${backendArg} --target ${target} --filter '${address}' --seed ${seed}${
    long ? " --long" : ""
  }${flags}`;
}

/** `word` as one POSIX shell word: bare when it is plain, else single-quoted. */
function shellWord(word: string): string {
  return /^[\w.,:=+\/@%-]+$/.test(word)
    ? word
    : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** After this many timeouts on one target, its remaining cases are not run. */
const MAX_TIMEOUTS_PER_TARGET = 2;

/** What {@linkcode prepareTarget} needs: the run's options, for one target. */
export interface PrepareOptions
  extends Omit<ConformanceOptions, "targets" | "onResult"> {
  /** A target asked for by name: absent is then a problem. @default false */
  readonly required?: boolean;
  /** What a skipped long-tier case tells the user to do. @default "run with --long" */
  readonly longHint?: string;
}

/** A case of a prepared target, with why it will not run, if it will not. */
export interface PlannedCase {
  /** The case. */
  readonly case: ConformanceCase;
  /** Its address. */
  readonly address: string;
  /**
   * Why it is skipped before running (capabilities, extraReasons, the long
   * tier, no readCache), else undefined.
   */
  readonly skip?: string;
}

/**
 * One target made ready: probed, its shared instance created, its cases
 * filtered and each given its skip reason. {@linkcode runConformance} and
 * `registerConformanceTests` both run targets through this, so a case's
 * status, message and reproduce command are decided in one place.
 */
export interface PreparedTarget {
  /** The target. */
  readonly target: Target;
  /** Asked for by name (absent is then a problem). */
  readonly required: boolean;
  /** False when absent or when setup failed (see `reason`, `problem`). */
  readonly available: boolean;
  /** Why the target is unavailable. */
  readonly reason?: string;
  /** Set when the target's state fails the run (a required target absent, create() threw). */
  readonly problem?: string;
  /** The cases that match the filter, in suite order (none when unavailable). */
  readonly cases: readonly PlannedCase[];
  /**
   * Runs one case (a skipped one ends skipped at once) and applies the
   * expectations: an unlisted failure's message ends with the reproduce
   * command; after a timeout the next cases get a fresh instance, and after
   * two the rest are skipped. Never throws.
   */
  runOne(c: PlannedCase): Promise<TargetCaseResult>;
  /** Disposes the shared instance (unless a timed-out call may hold it); returns the problem, if any. */
  finish(): Promise<string | undefined>;
}

/** A case's result, and how it counts against the run. */
export interface TargetCaseResult {
  /** The result, as reported. */
  readonly result: CaseResult;
  /** The case ran (it was not skipped, before or during its run). */
  readonly ran: boolean;
  /**
   * Why this result makes the run not conformant (an unlisted failure, with
   * its reproduce command; a listed failure that passed), else undefined.
   */
  readonly unexpected?: string;
  /** For an unexpected failure: what was thrown (the backend's own error). */
  readonly error?: unknown;
}

/**
 * Makes one target ready: probe, instance, cases, skip reasons. Never
 * throws: a target that cannot be set up is `available: false`.
 */
export async function prepareTarget(
  definition: BackendDefinition,
  t: BackendTarget,
  options: PrepareOptions = {},
): Promise<PreparedTarget> {
  const seed = options.seed ?? 1;
  const long = options.long ?? false;
  const expectations = options.expectations ?? {};
  const backendArg = options.backendArg ?? definition.name;
  const timeoutMs = options.timeoutMs;
  const required = options.required ?? false;
  const setup = await targetSetup(
    definition.name,
    t,
    timeoutMs,
    conformanceCases,
  );
  if (!setup.ok) {
    const problem = required || setup.problem
      ? setup.problem ??
        `target ${t.target} was asked for but is absent: ${setup.reason}`
      : undefined;
    return {
      target: t.target,
      required,
      available: false,
      reason: setup.reason,
      ...(problem ? { problem } : {}),
      cases: [],
      runOne: () => Promise.reject(new Error(`target ${t.target} is absent`)),
      finish: () => Promise.resolve(undefined),
    };
  }
  let backend = setup.backend;
  const stuck: AttentionBackend[] = [];
  let timeouts = 0;
  const longHint = options.longHint ?? "run with --long";
  const cases: PlannedCase[] = setup.cases
    .filter((c) =>
      options.filter === undefined || addressMatches(c.address, options.filter)
    )
    .map((c) => {
      const skip = staticSkip(c, long, longHint) ??
        (c.needsReadCache && !backend.readCache
          ? new NeedsReadCache().message
          : undefined);
      return { case: c, address: c.address, ...(skip ? { skip } : {}) };
    });
  const runOne = async (planned: PlannedCase): Promise<TargetCaseResult> => {
    const c = planned.case;
    const reproduce = reproduceCommand(
      backendArg,
      t.target,
      c.address,
      seed,
      long,
      options.settings,
    );
    let outcome: CaseOutcome;
    if (planned.skip) {
      outcome = { status: "skipped", message: planned.skip, ms: 0 };
    } else if (timeouts >= MAX_TIMEOUTS_PER_TARGET) {
      outcome = {
        status: "skipped",
        message:
          `not run: ${timeouts} cases timed out on target ${t.target} (the instance may be stuck); fix those first`,
        ms: 0,
      };
    } else {
      const limit = caseTimeoutMs(c, timeoutMs);
      options.observer?.start({
        target: t.target,
        address: c.address,
        timeoutMs: limit,
        reproduce,
      });
      outcome = await runOneCase(c, {
        backend,
        target: t,
        backendName: definition.name,
        seed,
        timeoutMs: limit,
        ...(options.observer
          ? { onPhase: (p: Phase) => options.observer!.phase(p) }
          : {}),
      });
      options.observer?.end();
      if (outcome.timedOut) {
        // The timed-out call may still be running: leave that instance
        // alone (disposing it under a running kernel is unsafe) and go on
        // with a fresh one.
        timeouts++;
        stuck.push(backend);
        if (timeouts < MAX_TIMEOUTS_PER_TARGET) {
          const fresh = await targetSetup(
            definition.name,
            t,
            timeoutMs,
            () => [],
          );
          if (fresh.ok) backend = fresh.backend;
          else timeouts = MAX_TIMEOUTS_PER_TARGET;
        }
      }
    }
    const listed = expectations[c.address] !== undefined;
    const { error: _error, ...rest } = outcome;
    let result: CaseResult = { address: c.address, ...rest };
    let unexpected: string | undefined;
    if (result.status === "failed") {
      if (listed) {
        result = { ...result, expectedFailure: true };
      } else {
        result = {
          ...result,
          message: `${result.message}\n  reproduce: ${reproduce}`,
        };
        unexpected = result.message;
      }
    } else if (result.status === "passed" && listed) {
      unexpected =
        `${c.address} is listed as a known failure but passed: remove it from the expectations`;
    }
    return {
      result,
      ran: outcome.status !== "skipped",
      ...(unexpected ? { unexpected } : {}),
      ...(unexpected && outcome.error !== undefined
        ? { error: outcome.error }
        : {}),
    };
  };
  return {
    target: t.target,
    required,
    available: true,
    cases,
    runOne,
    finish: async () =>
      stuck.includes(backend)
        ? undefined
        : await disposeWithin(definition.name, t.target, backend, timeoutMs),
  };
}

/**
 * The problems of asking for targets the definition does not ship.
 *
 * @example Usage
 * ```ts
 * import { notShippedProblems } from "./runner.ts";
 * import referenceBackend from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(notShippedProblems(referenceBackend, ["native"])[0], /ships only reference/);
 * ```
 */
export function notShippedProblems(
  definition: BackendDefinition,
  targets: readonly Target[] | undefined,
): string[] {
  const shipped = definition.targets.map((t) => t.target);
  return (targets ?? []).filter((wanted) => !shipped.includes(wanted)).map((
    wanted,
  ) =>
    `target ${wanted} was asked for, but backend ${definition.name} ships only ${
      shipped.join(", ")
    }: pick one of those`
  );
}

/**
 * Why a run in which no case ran checks nothing: a filter that matches no
 * case, no target available, or every case skipped.
 */
export function noCaseProblem(
  filter: string | undefined,
  matched: number,
  anyAvailable: boolean,
): string {
  if (filter !== undefined && matched === 0) {
    return `--filter '${filter}' matches no case address on any target run: addresses look like attend:mode=decode;len=37;... (a substring, or a glob with *); run without --filter to see them all`;
  }
  return `no case ran: ${
    anyAvailable
      ? "every case was skipped"
      : "no target of this backend is available here"
  }; a run that checks nothing is not conformant`;
}

/**
 * Runs the conformance suite. A run in which no case ran (a filter that
 * matches nothing, absent targets, everything skipped) is a failure, with
 * the reason in `problems`.
 *
 * @example Usage
 * ```ts
 * import { runConformance } from "./runner.ts";
 * import referenceBackend from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const report = await runConformance(referenceBackend, { filter: "contract:deterministic" });
 * assert.equal(report.unexpectedFailures, 0);
 * assert.equal(report.targets[0].results[0].status, "passed");
 *
 * const typo = await runConformance(referenceBackend, { filter: "atend:" });
 * assert.equal(typo.unexpectedFailures, 1);
 * assert.match(typo.problems[0], /--filter 'atend:' matches no case/);
 * ```
 */
export async function runConformance(
  definition: BackendDefinition,
  options: ConformanceOptions = {},
): Promise<ConformanceReport> {
  definition = withSettings(definition, options.settings ?? {});
  const seed = options.seed ?? 1;
  const long = options.long ?? false;
  const targets: TargetReport[] = [];
  const problems = notShippedProblems(definition, options.targets);
  const passedButListed: string[] = [];
  let unexpectedFailures = 0;
  let matched = 0;
  let ran = 0;

  for (const t of definition.targets) {
    if (options.targets && !options.targets.includes(t.target)) continue;
    const prepared = await prepareTarget(definition, t, {
      ...options,
      required: options.targets !== undefined,
    });
    if (prepared.problem) problems.push(prepared.problem);
    if (!prepared.available) {
      targets.push({
        target: t.target,
        available: false,
        reason: prepared.reason!,
        required: prepared.required,
        results: [],
      });
      continue;
    }
    matched += prepared.cases.length;
    const results: CaseResult[] = [];
    for (const c of prepared.cases) {
      const r = await prepared.runOne(c);
      if (r.ran) ran++;
      if (r.unexpected !== undefined) {
        if (r.result.status === "failed") unexpectedFailures++;
        else passedButListed.push(`${t.target} ${c.address}`);
      }
      results.push(r.result);
      options.onResult?.(t.target, r.result);
    }
    const problem = await prepared.finish();
    if (problem) problems.push(problem);
    targets.push({
      target: t.target,
      available: true,
      required: prepared.required,
      results,
    });
  }
  if (
    ran === 0 &&
    ((options.filter !== undefined && matched === 0) || problems.length === 0)
  ) {
    problems.push(
      noCaseProblem(
        options.filter,
        matched,
        targets.some((t) => t.available),
      ),
    );
  }
  return {
    backend: definition.name,
    version: definition.version,
    seed,
    long,
    targets,
    problems,
    unexpectedFailures: unexpectedFailures + problems.length,
    unexpectedPasses: passedButListed,
  };
}

/**
 * Why a case is skipped before it runs (its capability reason, or the long
 * tier when not asked for), else undefined.
 *
 * @example Usage
 * ```ts
 * import { staticSkip } from "./runner.ts";
 * import assert from "node:assert/strict";
 *
 * const c = { address: "a", long: true, run: async () => {} };
 * assert.equal(staticSkip(c, false, "run with --long"), "long-context case: run with --long");
 * assert.equal(staticSkip(c, true, "run with --long"), undefined);
 * ```
 */
export function staticSkip(
  c: ConformanceCase,
  long: boolean,
  longHint: string,
): string | undefined {
  if (c.skip) return c.skip;
  if (c.long && !long) return `long-context case: ${longHint}`;
  return undefined;
}
