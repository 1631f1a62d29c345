/**
 * The settings schema's own checks (run by defineBackend() and the
 * registry), and the gate that makes every target's create() receive
 * checked, defaulted settings whoever calls it.
 *
 * @module
 */

import type {
  AttentionBackend,
  BackendDefinition,
  BackendTarget,
  CreateBackendOptions,
} from "./backend.ts";
import { resolveSettings } from "./settings.ts";
import { withPlan } from "./plan_fallback.ts";
import { guardBackend, isUnguarded } from "./backend_guard.ts";

const TYPES = ["boolean", "integer", "enum"];

function specProblems(
  s: Record<string, unknown>,
  at: string,
  shipped: readonly unknown[],
): string[] {
  const problems: string[] = [];
  if (typeof s.name !== "string" || !/^[A-Za-z][A-Za-z0-9_]*$/.test(s.name)) {
    problems.push(
      `${at}.name must be an identifier such as "kernelPath", got ${
        JSON.stringify(s.name)
      }`,
    );
  }
  if (typeof s.description !== "string" || s.description === "") {
    problems.push(`${at}.description must be a one-line string`);
  }
  if (
    s.targets !== undefined &&
    (!Array.isArray(s.targets) || s.targets.length === 0 ||
      !s.targets.every((t) => shipped.includes(t)))
  ) {
    problems.push(
      `${at}.targets must list some of the targets the backend ships (${
        shipped.join(", ")
      }), got ${JSON.stringify(s.targets)}`,
    );
  }
  const d = s.default;
  if (s.type === "boolean") {
    if (typeof d !== "boolean") {
      problems.push(`${at}.default must be a boolean`);
    }
  } else if (s.type === "integer") {
    const { min, max, values } = s as Record<string, unknown>;
    if (!Number.isInteger(min) || !Number.isInteger(max) || min! > max!) {
      problems.push(`${at} must have integers min <= max`);
    } else if (
      values !== undefined &&
      (!Array.isArray(values) || values.length === 0 ||
        !values.every((v) => Number.isInteger(v) && v >= min! && v <= max!))
    ) {
      problems.push(`${at}.values must list integers from ${min} to ${max}`);
    } else if (
      !Number.isInteger(d) || (d as number) < (min as number) ||
      (d as number) > (max as number) ||
      (Array.isArray(values) && !values.includes(d))
    ) {
      problems.push(
        `${at}.default ${JSON.stringify(d)} is not an allowed value`,
      );
    }
  } else if (s.type === "enum") {
    const values = s.values;
    if (
      !Array.isArray(values) || values.length === 0 ||
      !values.every((v) => typeof v === "string") ||
      new Set(values).size !== values.length
    ) {
      problems.push(`${at}.values must list distinct strings`);
    } else if (!(values as unknown[]).includes(d)) {
      problems.push(
        `${at}.default ${JSON.stringify(d)} is not one of ${values.join(", ")}`,
      );
    }
  } else {
    problems.push(
      `${at}.type must be one of ${TYPES.join(", ")}, got ${
        JSON.stringify(s.type)
      }`,
    );
  }
  return problems;
}

/**
 * Every way a definition's `settings` breaks the schema (names, types,
 * domains, defaults, targets, a name declared twice for one target); empty
 * when it is sound.
 *
 * @example Usage
 * ```ts
 * import { settingsSchemaProblems } from "./settings_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(
 *   settingsSchemaProblems([{ name: "n", type: "integer", min: 1, max: 4, default: 8, description: "N" }], ["native"]),
 *   ["settings[0].default 8 is not an allowed value"],
 * );
 * ```
 */
export function settingsSchemaProblems(
  settings: unknown,
  shipped: readonly unknown[],
): string[] {
  if (settings === undefined) return [];
  if (!Array.isArray(settings)) {
    return [
      "settings must be an array of { name, type, default, description }",
    ];
  }
  const problems = settings.flatMap((s, i) =>
    typeof s === "object" && s !== null
      ? specProblems(s, `settings[${i}]`, shipped)
      : [`settings[${i}] must be an object`]
  );
  // One name may be declared once per target, so a value has one domain.
  const seen = new Map<string, unknown>();
  for (const s of settings) {
    for (const t of s?.targets ?? shipped) {
      const key = `${s?.name}@${t}`;
      if (seen.has(key)) {
        problems.push(
          `settings declare "${s?.name}" twice for target ${t}: give each declaration its own targets`,
        );
      }
      seen.set(key, s);
    }
  }
  return problems;
}

const gated = new WeakSet<object>();
// Settings a gate has resolved. A gated target wrapped into another
// definition (a test spreading a built-in target) reaches the inner gate
// with the outer one's resolved settings: they pass through unchanged
// rather than being judged by the inner definition's schema.
const resolvedByGate = new WeakSet<object>();

/**
 * The definition with each target's create() behind resolveSettings(): the
 * target sees only checked settings with every default filled in, however
 * it is reached (engine, conformance, benches, tests). Idempotent.
 */
export function gateSettings<T extends BackendDefinition>(definition: T): T {
  if (gated.has(definition)) return definition;
  const targets = definition.targets.map((t): BackendTarget => ({
    ...t,
    create: (options?: CreateBackendOptions) => {
      const given = options?.settings;
      const settings = given !== undefined && resolvedByGate.has(given)
        ? given
        : resolveSettings(definition, t.target, given);
      resolvedByGate.add(settings);
      // The plan fallback and the core guard ride the same gate: every
      // instance has plan() and is checked by core (core/backend_guard.ts).
      const made = t.create({ ...options, settings });
      const finish = (b: AttentionBackend) =>
        isUnguarded(t) ? withPlan(b) : guardBackend(withPlan(b), t);
      return made instanceof Promise ? made.then(finish) : finish(made);
    },
  }));
  const out = { ...definition, targets };
  gated.add(out);
  return out;
}
