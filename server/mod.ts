/**
 * The OpenAI-compatible server as a library: {@linkcode createApp} turns an
 * engine into a plain `(Request) => Promise<Response>` handler (completions,
 * chat completions, models, health, Prometheus metrics) to mount in
 * `Deno.serve` or any router; {@linkcode startServer} does what
 * `deno task serve` does (load a model, select a backend per layer, size the
 * KV pool, listen) and returns a handle to stop it.
 *
 * @example A handler over an engine, without a socket
 * ```ts
 * import { createApp } from "./mod.ts";
 * import { letters, testEngine } from "./test_support.ts"; // a tiny model, for the example
 * import assert from "node:assert/strict";
 *
 * const engine = await testEngine();
 * const app = createApp({ engine, tokenizer: letters, modelName: "counting" });
 * const response = await app(new Request("http://localhost/health"));
 * assert.equal(response.status, 200);
 * await engine.shutdown();
 * ```
 *
 * @module
 */

export {
  type AppOptions,
  type ChatMessage,
  createApp,
  type ServerTokenizer,
} from "./app.ts";
export { type RunningServer, startServer } from "./main.ts";
export type { ServeOptions } from "./serve_options.ts";
