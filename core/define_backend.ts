/**
 * Validation of backend definitions: the gate every module, built-in or
 * third-party, passes before the selector sees it.
 *
 * @module
 */

import {
  BACKEND_API_VERSION,
  type BackendDefinition,
  TARGETS,
} from "./backend.ts";
import { KV_CACHE_DTYPES } from "./dtype.ts";
import { gateSettings, settingsSchemaProblems } from "./settings_schema.ts";

/** A backend definition that breaks the contract; the message lists every problem. */
export class BackendDefinitionError extends TypeError {
  /** Creates the error; pass `{ cause }` to keep the underlying error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BackendDefinitionError";
  }
}

const CAPABILITY_FLAGS = [
  "softCap",
  "lowPrecisionCompute",
  "prefill",
  "decode",
  "mixedBatches",
] as const;

function sizeSetProblem(value: unknown): string | undefined {
  if (Array.isArray(value)) {
    return value.every((v) => Number.isInteger(v) && v > 0)
      ? undefined
      : "must list positive integers";
  }
  if (typeof value === "object" && value !== null) {
    const r = value as Record<string, unknown>;
    const ok = ["multipleOf", "min", "max"].every((k) =>
      Number.isInteger(r[k]) && (r[k] as number) > 0
    );
    return ok
      ? undefined
      : "must be { multipleOf, min, max } positive integers";
  }
  return "is missing (a list of sizes or { multipleOf, min, max })";
}

/**
 * Lists every way a value fails to be a {@linkcode BackendDefinition};
 * empty when it is one.
 *
 * @example Usage
 * ```ts
 * import { backendDefinitionProblems } from "./define_backend.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(backendDefinitionProblems({ apiVersion: 1, name: "x" }), [
 *   "version must be a string",
 *   "description must be a string",
 *   "targets must be a non-empty array",
 * ]);
 * ```
 */
export function backendDefinitionProblems(value: unknown): string[] {
  if (typeof value !== "object" || value === null) {
    return [
      `expected an object, got ${value === null ? "null" : typeof value}`,
    ];
  }
  const d = value as Record<string, unknown>;
  const problems: string[] = [];
  if (d.apiVersion !== BACKEND_API_VERSION) {
    problems.push(
      `apiVersion is ${d.apiVersion} but this framework implements backend API version ${BACKEND_API_VERSION}`,
    );
  }
  if (typeof d.name !== "string" || !/^[a-z][a-z0-9_-]*$/.test(d.name)) {
    problems.push(
      `name must be a lower-case identifier such as "my_backend", got ${
        JSON.stringify(d.name)
      }`,
    );
  }
  for (const key of ["version", "description"]) {
    if (typeof d[key] !== "string") problems.push(`${key} must be a string`);
  }
  if (!Array.isArray(d.targets) || d.targets.length === 0) {
    problems.push("targets must be a non-empty array");
    return problems;
  }
  d.targets.forEach((t: Record<string, unknown>, i: number) => {
    const at = `targets[${i}]`;
    if (!TARGETS.includes(t?.target as never)) {
      problems.push(`${at}.target must be one of ${TARGETS.join(", ")}`);
    }
    for (const fn of ["probe", "create"]) {
      if (typeof t?.[fn] !== "function") {
        problems.push(`${at}.${fn} must be a function`);
      }
    }
    const caps = t?.capabilities as Record<string, unknown> | undefined;
    if (typeof caps !== "object" || caps === null) {
      problems.push(`${at}.capabilities is missing`);
      return;
    }
    const dtypes = caps.kvDtypes;
    if (
      !Array.isArray(dtypes) || dtypes.length === 0 ||
      !dtypes.every((x) => (KV_CACHE_DTYPES as readonly unknown[]).includes(x))
    ) {
      problems.push(
        `${at}.capabilities.kvDtypes must list some of ${
          KV_CACHE_DTYPES.join(", ")
        }`,
      );
    }
    if (!Array.isArray(caps.int8Schemes)) {
      problems.push(`${at}.capabilities.int8Schemes must be an array`);
    }
    for (const key of ["headDims", "blockSizes"]) {
      const p = sizeSetProblem(caps[key]);
      if (p) problems.push(`${at}.capabilities.${key} ${p}`);
    }
    if (!Array.isArray(caps.layerKinds)) {
      problems.push(`${at}.capabilities.layerKinds must be an array`);
    }
    for (const flag of CAPABILITY_FLAGS) {
      if (typeof caps[flag] !== "boolean") {
        problems.push(`${at}.capabilities.${flag} must be a boolean`);
      }
    }
  });
  problems.push(
    ...settingsSchemaProblems(
      d.settings,
      d.targets.map((t: Record<string, unknown>) => t?.target),
    ),
  );
  return problems;
}

/**
 * Checks a backend definition and returns it with each target's create()
 * behind the settings gate (create() receives `settings` checked against
 * the definition's schema, defaults filled in; core/settings.ts); throws a
 * {@linkcode BackendDefinitionError} that lists every problem. Third-party
 * modules export `default defineBackend({...})`.
 *
 * @example Usage
 * ```ts
 * import { defineBackend } from "./define_backend.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => defineBackend({ apiVersion: 0 } as never), /apiVersion is 0/);
 * ```
 */
export function defineBackend<T extends BackendDefinition>(definition: T): T {
  const problems = backendDefinitionProblems(definition);
  if (problems.length > 0) {
    const name = typeof definition?.name === "string"
      ? `"${definition.name}"`
      : "(unnamed)";
    throw new BackendDefinitionError(
      `Backend ${name} does not meet the backend contract:\n  - ${
        problems.join("\n  - ")
      }`,
    );
  }
  return gateSettings(definition);
}
