/**
 * `deno task conformance --backend <name | ./module.ts> [--target
 * native|webgpu|reference|all] [--filter PATTERN] [--expect FILE] [--report
 * FILE] [--seed N] [--long] [--timeout SECONDS] [--backend-setting
 * NAME=VALUE]`: runs the conformance
 * suite, prints progress and a summary, writes a JSON report, and exits 1 on
 * any unexpected failure or when no case ran.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { builtinRegistry } from "../backends/builtin.ts";
import { type Target, TARGETS } from "../core/backend.ts";
import { formatProgress, formatSummary } from "../conformance/report.ts";
import { type Expectations, runConformance } from "../conformance/runner.ts";
import { DEFAULT_TIMEOUT_MS } from "../conformance/run_case.ts";
import { startWatchdog } from "../conformance/watchdog.ts";
import { parseBackendSettings } from "./cli_options.ts";

const HELP = `Usage: deno task conformance --backend NAME|./module.ts [options]

Checks a backend against the fp64 oracle through the public contract.

  --backend NAME|./module.ts  a built-in (${
  builtinRegistry().names.join(", ")
}) or a module path/URL
  --target T                  native, webgpu, reference or all (default: all; an absent
                              target is skipped with its reason, and is an error when named)
  --filter PATTERN            run matching case addresses only (substring, or glob with *);
                              one that matches no case is an error
  --expect FILE               JSON { "knownFailures": { "<address>": "<why>" } }
  --report FILE               write the JSON report there
  --seed N                    data seed (default: 1)
  --long                      include 32k-token and >2^31-element cases
  --timeout SECONDS           per-case limit (default: ${
  DEFAULT_TIMEOUT_MS / 1000
}; long-tier cases get 10x; 0: none).
                              A case past it fails, naming the phase in progress (create,
                              createCache, write, plan, attend, copyBlocks, readCache,
                              disposeCache, dispose); one that blocks the event loop
                              stops the run with that message and exit status 1
  --backend-setting NAME=VALUE  a backend setting for every instance the suite creates on
                              the targets that take it (repeatable); cases that set their
                              own (lowprec) merge theirs over it
  --quiet                     no per-case progress lines
  -h, --help                  this text

Exit status: 0 when every case run passed (or is a listed known failure) and at
least one case ran; 1 on an unexpected failure, a timeout, or a run that checked
nothing (a filter that matches no case, a named target that is absent or not
shipped, every case skipped); 2 on a usage error.`;

/** Reads an expectations file, with errors that name the file and field. */
export async function loadExpectations(path: string): Promise<Expectations> {
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(path));
  } catch (cause) {
    throw new Error(
      `Cannot read expectations file ${path}: ${(cause as Error).message}`,
      { cause },
    );
  }
  const known = (json as { knownFailures?: unknown })?.knownFailures;
  if (typeof known !== "object" || known === null || Array.isArray(known)) {
    throw new Error(
      `Expectations file ${path} needs { "knownFailures": { "<case address>": "<why>" } }`,
    );
  }
  for (const [address, why] of Object.entries(known)) {
    if (typeof why !== "string") {
      throw new Error(
        `Expectations file ${path}: knownFailures["${address}"] must be a string saying why`,
      );
    }
  }
  return known as Expectations;
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      backend: { type: "string" },
      target: { type: "string", default: "all" },
      filter: { type: "string" },
      expect: { type: "string" },
      report: { type: "string" },
      seed: { type: "string", default: "1" },
      long: { type: "boolean", default: false },
      timeout: { type: "string", default: String(DEFAULT_TIMEOUT_MS / 1000) },
      quiet: { type: "boolean", default: false },
      "backend-setting": { type: "string", multiple: true },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.backend) {
    throw new Error(
      "--backend is required: a built-in name or ./path/to/module.ts",
    );
  }
  if (values.target !== "all" && !TARGETS.includes(values.target as Target)) {
    throw new Error(
      `--target: "${values.target}" is not a target: use all, ${
        TARGETS.join(", ")
      }`,
    );
  }
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) {
    throw new Error(`--seed: "${values.seed}" is not a non-negative integer`);
  }
  const timeout = Number(values.timeout);
  if (!(timeout >= 0) || values.timeout === "") {
    throw new Error(
      `--timeout: "${values.timeout}" is not a number of seconds >= 0 (0 turns the limit off)`,
    );
  }
  const definition = await builtinRegistry().load(values.backend);
  const expectations = values.expect
    ? await loadExpectations(values.expect)
    : {};
  // A case that blocks the event loop can only be reported from another
  // thread.
  const watchdog = timeout > 0 ? startWatchdog() : undefined;
  const report = await runConformance(definition, {
    ...(values.target === "all" ? {} : { targets: [values.target as Target] }),
    ...(values.filter ? { filter: values.filter } : {}),
    seed,
    long: values.long,
    expectations,
    backendArg: values.backend,
    timeoutMs: timeout * 1000,
    settings: parseBackendSettings(values["backend-setting"]),
    ...(watchdog ? { observer: watchdog } : {}),
    onResult: values.quiet
      ? undefined
      : (t, r) => console.log(formatProgress(t, r)),
  });
  watchdog?.stop();
  console.log(formatSummary(report));
  if (values.report) {
    await Deno.writeTextFile(
      values.report,
      JSON.stringify(report, null, 2) + "\n",
    );
    console.log(`Report written to ${values.report}`);
  }
  return report.unexpectedFailures === 0 ? 0 : 1;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    Deno.exit(2);
  }
}
