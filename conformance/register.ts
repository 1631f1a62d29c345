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
import { mulberry32 } from "../core/prng.ts";
import { hashString } from "./case.ts";
import { NeedsReadCache } from "./write_cases.ts";
import {
  conformanceCases,
  type Expectations,
  reproduceCommand,
} from "./runner.ts";
import { addressMatches } from "./params.ts";

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
  /** @default Deno.test */
  readonly test?: TestFunction;
  /** @default every target the definition ships */
  readonly targets?: readonly Target[];
  readonly filter?: string;
  /** @default 1 */
  readonly seed?: number;
  /** @default false */
  readonly long?: boolean;
  readonly expectations?: Expectations;
}

/**
 * Probes each target and registers one test per case. Absent targets give
 * one ignored test that says why.
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
 * ```
 */
export async function registerConformanceTests(
  definition: BackendDefinition,
  options: RegisterOptions = {},
): Promise<void> {
  const test = options.test ?? Deno.test;
  const seed = options.seed ?? 1;
  for (const t of definition.targets) {
    if (options.targets && !options.targets.includes(t.target)) continue;
    const prefix = `conformance ${definition.name}/${t.target}`;
    const availability = await t.probe();
    if (!availability.available) {
      test({
        name: `${prefix} (ignored: ${availability.reason})`,
        ignore: true,
        fn: async () => {},
      });
      continue;
    }
    // Created now, not lazily: whether it has readCache decides which
    // cases are ignored.
    const shared = await t.create();
    const cases = conformanceCases(t.capabilities).filter((c) =>
      options.filter === undefined || addressMatches(c.address, options.filter)
    );
    const skipOf = (c: (typeof cases)[number]) =>
      c.skip ??
        (c.long && !options.long
          ? "long-context case: pass long: true"
          : undefined) ??
        (c.address.startsWith("write:") && !shared.readCache
          ? new NeedsReadCache().message
          : undefined);
    const runnable = cases.filter((c) => skipOf(c) === undefined);
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
          const caseSeed = (seed ^ hashString(c.address)) >>> 0;
          try {
            await c.run({
              backend: shared,
              target: t,
              rand: mulberry32(caseSeed),
              seed: caseSeed,
              createBackend: async (o) => await t.create(o),
            });
            if (options.expectations?.[c.address] !== undefined) {
              throw new KnownFailurePassed(c.address);
            }
          } catch (error) {
            if (error instanceof KnownFailurePassed) throw error;
            if (options.expectations?.[c.address] !== undefined) return;
            throw new Error(
              `${(error as Error).message}\n  reproduce: ${
                reproduceCommand(
                  definition.name,
                  t.target,
                  c.address,
                  seed,
                  c.long ?? false,
                )
              }`,
              { cause: error },
            );
          } finally {
            if (c === runnable.at(-1)) await shared.dispose();
          }
        },
      });
    }
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
