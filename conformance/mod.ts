/**
 * The conformance suite: what "safe to serve with" means for a backend.
 * Run it from the command line (`deno task conformance --backend
 * ./my_backend.ts`), from your own tests ({@linkcode registerConformanceTests}),
 * or programmatically ({@linkcode runConformance}). docs/CONFORMANCE.md lists
 * every check and tolerance.
 *
 * @module
 */

export * from "./case.ts";
export * from "./cache_kinds.ts";
export * from "./compare.ts";
export * from "./params.ts";
export * from "./reasons.ts";
export * from "./register.ts";
export * from "./report.ts";
export * from "./run_case.ts";
export * from "./runner.ts";
export * from "./tolerances.ts";
export * from "./traced_backend.ts";
