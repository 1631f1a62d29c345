/**
 * `--backend-setting` for the suite: the settings each target's instances
 * are created with, the shared one and those a case creates itself (a
 * case's own settings, like lowprec's accumulationPromotion, are merged
 * over them).
 *
 * @module
 */

import type { BackendDefinition, BackendTarget } from "../core/backend.ts";
import { settingsOf } from "../core/settings.ts";
import { settingsForUses } from "../core/settings_plan.ts";

/**
 * The definition with each target creating its instances with the given
 * settings that its target takes. Throws (naming who declares it) when no
 * target of the backend takes one, or a value is out of its domain.
 *
 * @example Usage
 * ```ts
 * import { withSettings } from "./settings.ts";
 * import fa3 from "../backends/fa3/mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => withSettings(fa3, { promote: "false" }), /No backend in use takes the setting "promote"/);
 * assert.equal(withSettings(fa3, {}), fa3);
 * ```
 */
export function withSettings(
  definition: BackendDefinition,
  settings: Readonly<Record<string, unknown>>,
): BackendDefinition {
  if (Object.keys(settings).length === 0) return definition;
  // Checks every value against every target that takes it, up front.
  settingsForUses(
    definition.targets.map((t) => ({ definition, target: t.target })),
    settings,
  );
  const targets = definition.targets.map((t): BackendTarget => {
    const names = new Set(settingsOf(definition, t.target).map((s) => s.name));
    const mine = Object.fromEntries(
      Object.entries(settings).filter(([name]) => names.has(name)),
    );
    return {
      ...t,
      create: (options) =>
        t.create({ ...options, settings: { ...mine, ...options?.settings } }),
    };
  });
  return { ...definition, targets };
}
