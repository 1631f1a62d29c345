/**
 * Backend settings as a typed schema: a definition lists each setting it
 * takes (name, type, domain, default, one-line description, the targets it
 * applies to), and one validator here checks and defaults `settings` before
 * a target's create() sees them, so two targets can never read the same
 * setting differently, and the command line (`--backend-setting
 * NAME=VALUE`) reaches every setting a backend declares.
 *
 * @module
 */

import type { BackendDefinition, Target } from "./backend.ts";

/** A setting's value once checked. */
export type SettingValue = boolean | number | string;

/** Settings as a target's create() receives them: checked, defaults filled in. */
export type ResolvedSettings = Readonly<Record<string, SettingValue>>;

/** What every kind of setting declares. */
export interface SettingBase {
  /** The key in `settings` and in `--backend-setting NAME=VALUE`. */
  readonly name: string;
  /** One line for `deno task select` and error messages. */
  readonly description: string;
  /**
   * (optional) The targets it applies to; absent means every target the
   * backend ships. A name may be declared twice for disjoint targets, to
   * give each its own domain (fa3's promoteEveryBlocks).
   */
  readonly targets?: readonly Target[];
}

/** One setting of a backend, as data. */
export type BackendSetting =
  | SettingBase & { readonly type: "boolean"; readonly default: boolean }
  | SettingBase & {
    readonly type: "integer";
    readonly default: number;
    /** Smallest allowed value. */
    readonly min: number;
    /** Largest allowed value. */
    readonly max: number;
    /** (optional) The only values allowed, all within min..max. */
    readonly values?: readonly number[];
  }
  | SettingBase & {
    readonly type: "enum";
    readonly default: string;
    /** The allowed strings. */
    readonly values: readonly string[];
  };

/** A bad setting value or name; the message names the backend, target, setting and fix. */
export class BackendSettingError extends TypeError {
  /** Creates the error; pass `{ cause }` to keep the underlying error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BackendSettingError";
  }
}

/** The settings of `definition` that apply on `target`. */
export function settingsOf(
  definition: Pick<BackendDefinition, "settings">,
  target: Target,
): BackendSetting[] {
  return (definition.settings ?? []).filter((s) =>
    s.targets === undefined || s.targets.includes(target)
  );
}

/** What a setting accepts, in words. */
export function describeDomain(s: BackendSetting): string {
  if (s.type === "boolean") return "true or false";
  if (s.type === "enum") return `one of ${s.values.join(", ")}`;
  return s.values
    ? `one of ${s.values.join(", ")}`
    : `an integer from ${s.min} to ${s.max}`;
}

// A string is read as the setting's text form, as `--backend-setting`
// passes it ("false", "4"); anything else must already have the type.
function coerce(s: BackendSetting, value: unknown): unknown {
  if (typeof value !== "string" || s.type === "enum") return value;
  if (s.type === "boolean") {
    return value === "true" ? true : value === "false" ? false : value;
  }
  return /^-?\d+$/.test(value.trim()) ? Number(value) : value;
}

function fits(s: BackendSetting, v: unknown): boolean {
  if (s.type === "boolean") return typeof v === "boolean";
  if (s.type === "enum") return s.values.includes(v as string);
  return Number.isInteger(v) && (v as number) >= s.min &&
    (v as number) <= s.max && (s.values?.includes(v as number) ?? true);
}

/**
 * Checks `settings` against what `definition` declares for `target` and
 * fills in the defaults. Strings are read as text for boolean and integer
 * settings ("false", "4"), as the command line gives them; an undefined
 * value counts as absent.
 *
 * @throws {BackendSettingError} On an unknown name (listing the known ones
 * and any other target that takes it) or a value outside the domain.
 *
 * @example Usage
 * ```ts
 * import { resolveSettings } from "./settings.ts";
 * import assert from "node:assert/strict";
 *
 * const def = {
 *   name: "demo",
 *   settings: [{ name: "fast", type: "boolean", default: true, description: "Go fast" }],
 * } as const;
 * assert.deepEqual(resolveSettings(def, "native", {}), { fast: true });
 * assert.deepEqual(resolveSettings(def, "native", { fast: "false" }), { fast: false });
 * assert.throws(
 *   () => resolveSettings(def, "native", { fast: 1 }),
 *   /Backend demo on native: setting fast must be true or false, got 1/,
 * );
 * ```
 */
export function resolveSettings(
  definition: Pick<BackendDefinition, "name" | "settings">,
  target: Target,
  settings: Readonly<Record<string, unknown>> = {},
): ResolvedSettings {
  const where = `Backend ${definition.name} on ${target}`;
  const own = settingsOf(definition, target);
  const out: Record<string, SettingValue> = {};
  for (const [name, given] of Object.entries(settings)) {
    if (given === undefined) continue; // absent: the default
    const s = own.find((x) => x.name === name);
    if (s === undefined) {
      const elsewhere = (definition.settings ?? [])
        .filter((x) => x.name === name).flatMap((x) => x.targets ?? []);
      throw new BackendSettingError(
        `${where} has no setting "${name}"${
          elsewhere.length > 0
            ? ` (it applies on ${elsewhere.join(", ")} only)`
            : ""
        }: use one of ${
          own.map((x) => x.name).join(", ") || "none (it takes no settings)"
        }`,
      );
    }
    const value = coerce(s, given);
    if (!fits(s, value)) {
      throw new BackendSettingError(
        `${where}: setting ${name} must be ${describeDomain(s)}, got ${
          JSON.stringify(given)
        }`,
      );
    }
    out[name] = value as SettingValue;
  }
  for (const s of own) out[s.name] ??= s.default;
  return out;
}
