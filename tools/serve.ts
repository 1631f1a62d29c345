/**
 * `deno task serve`: the main command. The engine and the OpenAI-compatible
 * server are not in this version yet; until they are, this prints the
 * attention plan the server will use and says so, then exits.
 *
 * @module
 */

import { formatSelectionPlan } from "../core/selection_report.ts";
import {
  parseSelectionArgs,
  SELECTION_HELP,
  selectOptionsFromFlags,
} from "./cli_options.ts";
import { DEMO_MODEL, planModel } from "./plan_model.ts";

const HELP = `Usage: deno task serve [options]

Serves a model over an OpenAI-compatible HTTP API (not in this version yet:
for now it prints the attention plan it would serve with).

${SELECTION_HELP}
  --host HOST   (default: 127.0.0.1)
  --port PORT   (default: 8000)
  (without --model, the built-in demo config ${DEMO_MODEL})`;

if (import.meta.main) {
  try {
    const { values } = parseSelectionArgs(Deno.args, {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8000" },
    });
    if (values.help) {
      console.log(HELP);
      Deno.exit(0);
    }
    const plan = await planModel(
      values.model ?? DEMO_MODEL,
      selectOptionsFromFlags(values),
    );
    console.log(formatSelectionPlan(plan));
    console.log(
      `\nServing is not in this version yet: the engine and the OpenAI-compatible server come next (see the Status table in README.md). Nothing is listening on http://${values.host}:${values.port}.`,
    );
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    Deno.exit(2);
  }
}
