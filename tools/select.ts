/**
 * `deno task select --model <config.json> [--kv-cache-dtype fp8_e4m3]
 * [--backend X]`: prints which backend and target serve each layer, and why.
 *
 * @module
 */

import { formatSelectionPlan } from "../core/selection_report.ts";
import {
  parseSelectionArgs,
  SELECTION_HELP,
  selectOptionsFromFlags,
} from "./cli_options.ts";
import { loadModelConfig } from "../core/model_config.ts";
import { DEFAULT_MODEL_DIR, planSpec } from "../server/plan_model.ts";

const HELP = `Usage: deno task select [options]

Prints the per-layer attention plan for a model config.

${SELECTION_HELP}
  --quiet                           omit the "Passed over" section
  (without --model, the built-in demo model ${DEFAULT_MODEL_DIR})`;

if (import.meta.main) {
  try {
    const { values } = parseSelectionArgs(Deno.args, {
      quiet: { type: "boolean", default: false },
    });
    if (values.help) {
      console.log(HELP);
      Deno.exit(0);
    }
    const { plan, probed } = await planSpec(
      await loadModelConfig(values.model ?? DEFAULT_MODEL_DIR),
      selectOptionsFromFlags(values),
    );
    console.log(formatSelectionPlan(plan, { verbose: !values.quiet }));
    // What runs, in words: e.g. the native kernel path and thread count.
    const used = new Set(plan.decisions.map((d) => `${d.backend}/${d.target}`));
    const lines = probed.flatMap((p) =>
      [...p.availability].flatMap(([target, a]) => {
        const key = `${p.definition.name}/${target}`;
        const settings = Object.entries(plan.settings?.[key] ?? {})
          .map(([name, value]) => `${name}=${value}`).join(", ");
        return used.has(key) && a.available
          ? [
            `  ${key}: ${a.detail ?? "available"}${
              settings ? `; settings ${settings}` : ""
            }`,
          ]
          : [];
      })
    );
    if (lines.length > 0) console.log(["", "In use:", ...lines].join("\n"));
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    Deno.exit(2);
  }
}
