/**
 * Runs the suite against one backend definition, target by target, and
 * returns a report. Everything a user sees (progress, tables, JSON) is built
 * from this report.
 *
 * @module
 */

import type { BackendDefinition, Target } from "../core/backend.ts";
import { mulberry32 } from "../core/prng.ts";
import { attendCases } from "./attend_cases.ts";
import { type CaseResult, type ConformanceCase, hashString } from "./case.ts";
import { contractCases } from "./contract_cases.ts";
import { lowPrecisionCases } from "./low_precision_cases.ts";
import { oneHotCases } from "./one_hot_cases.ts";
import { addressMatches } from "./params.ts";
import { NeedsReadCache, writeCases } from "./write_cases.ts";
import type { BackendCapabilities } from "../core/capabilities.ts";

/** Known failures: address -> why. A listed case that passes is reported. */
export type Expectations = Readonly<Record<string, string>>;

/** Options for {@linkcode runConformance}. */
export interface ConformanceOptions {
  /** Targets to run; others are skipped. @default every target the definition ships */
  readonly targets?: readonly Target[];
  /** Run only cases whose address matches (substring, or glob with *). */
  readonly filter?: string;
  /** @default 1 */
  readonly seed?: number;
  /** Include long-context and large-memory cases. @default false */
  readonly long?: boolean;
  readonly expectations?: Expectations;
  /** Called after each case (progress). */
  readonly onResult?: (target: Target, result: CaseResult) => void;
  /** How a user reruns one case: `--backend X` part of the command. @default the backend name */
  readonly backendArg?: string;
}

/** One target's results. */
export interface TargetReport {
  readonly target: Target;
  /** Absent targets are skipped whole, with the reason. */
  readonly available: boolean;
  readonly reason?: string;
  /** A target asked for explicitly but absent is an error. */
  readonly required: boolean;
  readonly results: readonly CaseResult[];
}

/** The whole run. */
export interface ConformanceReport {
  readonly backend: string;
  readonly version: string;
  readonly seed: number;
  readonly long: boolean;
  readonly targets: readonly TargetReport[];
  /** Failed cases that the expectations file does not list, and absent required targets. */
  readonly unexpectedFailures: number;
  /** Listed as known failures but passed: remove them from the file. */
  readonly unexpectedPasses: readonly string[];
}

/** Every case for a target's capabilities, in a stable order. */
export function conformanceCases(caps: BackendCapabilities): ConformanceCase[] {
  return [
    ...writeCases(caps),
    ...oneHotCases(caps),
    ...attendCases(caps),
    ...contractCases(caps),
    ...lowPrecisionCases(caps),
  ];
}

/** The command that reruns one case with the same data. */
export function reproduceCommand(
  backendArg: string,
  target: Target,
  address: string,
  seed: number,
  long: boolean,
): string {
  return `deno task conformance --backend ${backendArg} --target ${target} --filter '${address}' --seed ${seed}${
    long ? " --long" : ""
  }`;
}

/**
 * Runs the conformance suite.
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
 * ```
 */
export async function runConformance(
  definition: BackendDefinition,
  options: ConformanceOptions = {},
): Promise<ConformanceReport> {
  const seed = options.seed ?? 1;
  const long = options.long ?? false;
  const expectations = options.expectations ?? {};
  const backendArg = options.backendArg ?? definition.name;
  const targets: TargetReport[] = [];
  const passedButListed: string[] = [];
  let unexpectedFailures = 0;

  for (const t of definition.targets) {
    if (options.targets && !options.targets.includes(t.target)) continue;
    const required = options.targets !== undefined;
    let availability;
    try {
      availability = await t.probe();
    } catch (error) {
      availability = {
        available: false as const,
        reason: `probe failed: ${(error as Error).message}`,
      };
    }
    if (!availability.available) {
      if (required) unexpectedFailures++;
      targets.push({
        target: t.target,
        available: false,
        reason: availability.reason,
        required,
        results: [],
      });
      continue;
    }
    const cases = conformanceCases(t.capabilities).filter((
      c,
    ) => (options.filter === undefined ||
      addressMatches(c.address, options.filter))
    );
    const backend = await t.create();
    const results: CaseResult[] = [];
    try {
      for (const c of cases) {
        const result = await runCase(c, {
          long,
          seed,
          listed: expectations[c.address],
          run: (rand, caseSeed) =>
            c.run({
              backend,
              target: t,
              rand,
              seed: caseSeed,
              createBackend: async (o) => await t.create(o),
            }),
        });
        if (result.status === "failed" && !result.expectedFailure) {
          unexpectedFailures++;
          results.push({
            ...result,
            message: `${result.message}\n  reproduce: ${
              reproduceCommand(backendArg, t.target, c.address, seed, long)
            }`,
          });
        } else {
          if (
            result.status === "passed" && expectations[c.address] !== undefined
          ) {
            passedButListed.push(`${t.target} ${c.address}`);
          }
          results.push(result);
        }
        options.onResult?.(t.target, results.at(-1)!);
      }
    } finally {
      await backend.dispose();
    }
    targets.push({ target: t.target, available: true, required, results });
  }
  return {
    backend: definition.name,
    version: definition.version,
    seed,
    long,
    targets,
    unexpectedFailures,
    unexpectedPasses: passedButListed,
  };
}

async function runCase(
  c: ConformanceCase,
  o: {
    long: boolean;
    seed: number;
    listed: string | undefined;
    run: (rand: () => number, seed: number) => Promise<unknown>;
  },
): Promise<CaseResult> {
  if (c.skip) {
    return { address: c.address, status: "skipped", message: c.skip, ms: 0 };
  }
  if (c.long && !o.long) {
    return {
      address: c.address,
      status: "skipped",
      message: "long-context case: run with --long",
      ms: 0,
    };
  }
  const caseSeed = (o.seed ^ hashString(c.address)) >>> 0;
  const start = performance.now();
  try {
    const metrics = await o.run(mulberry32(caseSeed), caseSeed);
    return {
      address: c.address,
      status: "passed",
      ms: performance.now() - start,
      ...(metrics ? { metrics: metrics as Record<string, number> } : {}),
    };
  } catch (error) {
    const ms = performance.now() - start;
    if (error instanceof NeedsReadCache) {
      return {
        address: c.address,
        status: "skipped",
        message: error.message,
        ms,
      };
    }
    const message = error instanceof Error
      ? `${error.name}: ${error.message}`
      : String(error);
    return {
      address: c.address,
      status: "failed",
      message,
      ms,
      ...(o.listed !== undefined ? { expectedFailure: true } : {}),
    };
  }
}
