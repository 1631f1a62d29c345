/**
 * `deno task serve [--model DIR] [--backend NAME|./module.ts] ...`: the
 * OpenAI-compatible server (see `--help`).
 *
 * @module
 */

import { startServer } from "../server/main.ts";
import {
  SERVE_FLAGS,
  SERVE_HELP,
  serveOptionsFromFlags,
} from "../server/serve_options.ts";
import {
  parseSelectionArgs,
  SELECTION_HELP,
  selectOptionsFromFlags,
} from "./cli_options.ts";
import { DEFAULT_MODEL_DIR } from "../server/plan_model.ts";

const HELP = `Usage: deno task serve [options]

Serves a model over an OpenAI-compatible HTTP API, each attention layer
through the backend chosen for it.

${SELECTION_HELP}
${SERVE_HELP}
  (without --model: the project's demo model, ${DEFAULT_MODEL_DIR})`;

if (import.meta.main) {
  let server;
  try {
    const { values } = parseSelectionArgs(Deno.args, SERVE_FLAGS);
    if (values.help) {
      console.log(HELP);
      Deno.exit(0);
    }
    server = await startServer(
      values.model ?? DEFAULT_MODEL_DIR,
      selectOptionsFromFlags(values),
      serveOptionsFromFlags(values),
    );
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    Deno.exit(2);
  }
  const running = server;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, async () => {
      console.log(
        `\n${signal}: no new requests; waiting for in-flight ones, then exiting`,
      );
      await running.stop();
      Deno.exit(0);
    });
  }
}
