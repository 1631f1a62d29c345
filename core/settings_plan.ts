/**
 * Settings for a whole plan: one flat list (`--backend-setting NAME=VALUE`,
 * repeatable) shared out to the backend instances the plan uses. A setting
 * applies to every instance whose backend declares it for that target; one
 * that no instance in use takes is an error naming who declares it.
 *
 * @module
 */

import type { BackendDefinition, Target } from "./backend.ts";
import {
  BackendSettingError,
  type ResolvedSettings,
  resolveSettings,
  settingsOf,
} from "./settings.ts";

/** One backend instance a plan uses: a definition on one target. */
export interface SettingsUse {
  /** The backend's definition. */
  readonly definition: BackendDefinition;
  /** The target the plan runs it on. */
  readonly target: Target;
}

/**
 * The checked, defaulted settings of each instance, keyed `backend/target`.
 * `known` lists every loaded definition, for the error's "declared by".
 *
 * @throws {BackendSettingError} On a setting no instance in use takes, or a
 * bad value for one that does.
 *
 * @example Usage
 * ```ts
 * import { settingsForUses } from "./settings_plan.ts";
 * import assert from "node:assert/strict";
 *
 * const demo = {
 *   name: "demo", targets: [],
 *   settings: [{ name: "fast", type: "boolean", default: true, description: "Go fast", targets: ["native"] }],
 * } as never;
 * const uses = [{ definition: demo, target: "native" as const }];
 * assert.deepEqual(settingsForUses(uses, { fast: "false" }), { "demo/native": { fast: false } });
 * assert.throws(
 *   () => settingsForUses([{ definition: demo, target: "webgpu" }], { fast: false }),
 *   /No backend in use takes the setting "fast": demo declares it on native; in use: demo\/webgpu/,
 * );
 * ```
 */
export function settingsForUses(
  uses: readonly SettingsUse[],
  given: Readonly<Record<string, unknown>> = {},
  known: readonly BackendDefinition[] = uses.map((u) => u.definition),
): Record<string, ResolvedSettings> {
  const takes = (u: SettingsUse, name: string) =>
    settingsOf(u.definition, u.target).some((s) => s.name === name);
  for (const name of Object.keys(given)) {
    if (uses.some((u) => takes(u, name))) continue;
    const declarers = [...new Set([...known, ...uses.map((u) => u.definition)])]
      .flatMap((d) =>
        (d.settings ?? []).filter((s) => s.name === name).map((s) =>
          `${d.name} declares it on ${
            (s.targets ?? d.targets.map((t) => t.target)).join(", ")
          }`
        )
      );
    throw new BackendSettingError(
      `No backend in use takes the setting "${name}": ${
        declarers.join("; ") || "no loaded backend declares it"
      }; in use: ${
        uses.map((u) => `${u.definition.name}/${u.target}`).join(", ")
      }. Drop --backend-setting ${name} or choose a backend and target that takes it (deno task select lists the settings in force)`,
    );
  }
  const out: Record<string, ResolvedSettings> = {};
  for (const u of uses) {
    const mine = Object.fromEntries(
      Object.entries(given).filter(([name]) => takes(u, name)),
    );
    out[`${u.definition.name}/${u.target}`] = resolveSettings(
      u.definition,
      u.target,
      mine,
    );
  }
  return out;
}
