/**
 * The OpenAI-compatible HTTP surface over one engine: completions and chat
 * completions (streamed as OpenAI streams them, ending with `data: [DONE]`),
 * models, health and Prometheus metrics. A plain `(Request) => Response`
 * handler, so tests call it without a socket and `Deno.serve` serves it.
 *
 * @module
 */

import type { Engine, EngineTokenizer } from "../engine/engine.ts";
import type { RequestStream } from "../engine/request_stream.ts";
import { RequestTooLargeError } from "../engine/scheduler.ts";
import {
  type SamplingParams,
  samplingParams,
  SamplingParamsError,
} from "../engine/sampling_params.ts";
import { badRequest, HttpError } from "./http_error.ts";
import { renderMetrics } from "./prometheus.ts";
import { backendFailure, findBackendError } from "./step_errors.ts";
import { field, readJsonObject } from "./request_body.ts";

/** A chat message as OpenAI sends it (text content only). */
export interface ChatMessage {
  /** Who speaks: the chat template renders each role its own way. */
  readonly role: "system" | "user" | "assistant";
  /** The message text (images and tool calls are not supported). */
  readonly content: string;
}

/** What the server needs of a tokenizer. */
export interface ServerTokenizer extends EngineTokenizer {
  /** The token ids of a completion prompt, as the model's vocabulary numbers them. */
  encode(text: string): number[];
  /** The prompt tokens for a conversation (the model's chat template). */
  encodeChat(messages: readonly ChatMessage[]): number[];
}

/** Options for {@linkcode createApp}. */
export interface AppOptions {
  /** The engine every request runs on; the app never shuts it down. */
  readonly engine: Engine;
  /** Turns prompts and chat messages into token ids, and ids back into text. */
  readonly tokenizer: ServerTokenizer;
  /** The name clients pass as `model`. */
  readonly modelName: string;
  /** Logs unexpected errors. @default console.error */
  readonly log?: (message: string) => void;
}

interface Prepared {
  readonly prompt: number[];
  readonly params: SamplingParams;
  readonly stream: boolean;
  readonly includeUsage: boolean;
}

/** Builds the request handler. */
export function createApp(
  o: AppOptions,
): (
  request: Request,
  info?: { completed?: Promise<void> },
) => Promise<Response> {
  const log = o.log ?? console.error;
  const created = () => Math.floor(Date.now() / 1000);
  let counter = 0;
  // Set when a backend's device is lost: every later request (and /health)
  // gets this 503, so a supervisor restarts the process; no Retry-After,
  // since retrying this process cannot help.
  let deviceLost: HttpError | undefined;

  /** A failed generation's response, mapped by class (step_errors.ts). */
  const failure = (error: unknown): HttpError => {
    const mapped = backendFailure(error);
    if (mapped?.status === 503 && !deviceLost) {
      deviceLost = mapped;
      log(`Refusing requests from now on: ${mapped.message}`);
    } else if (mapped) {
      log(mapped.message);
    }
    return mapped ??
      new HttpError(500, `Generation failed: ${(error as Error).message}`, {
        cause: error,
      });
  };

  const prepare = (
    body: Record<string, unknown>,
    prompt: number[],
    maxTokensDefault: number,
  ): Prepared => {
    const model = field<string>(body, "model", "string");
    if (model === undefined) {
      throw badRequest(
        "model",
        "model is required: use " + JSON.stringify(o.modelName),
      );
    }
    if (model !== o.modelName) {
      throw new HttpError(
        400,
        `The model "${model}" does not exist: this server serves "${o.modelName}"`,
        {
          param: "model",
          code: "model_not_found",
        },
      );
    }
    const n = field<number>(body, "n", "integer");
    if (n !== undefined && n !== 1) {
      throw badRequest(
        "n",
        `n must be 1 (several choices per request are not supported), got ${n}`,
      );
    }
    if (
      field(body, "logprobs", "boolean") || typeof body.logprobs === "number"
    ) {
      throw badRequest("logprobs", "logprobs are not supported: omit logprobs");
    }
    const stop = body.stop;
    const stops = stop === undefined || stop === null
      ? []
      : typeof stop === "string"
      ? [stop]
      : Array.isArray(stop) && stop.every((s) => typeof s === "string")
      ? stop as string[]
      : (() => {
        throw badRequest(
          "stop",
          "stop must be a string or an array of strings",
        );
      })();
    const room = o.engine.maxModelLen - prompt.length;
    if (prompt.length === 0) {
      throw badRequest(
        "prompt",
        "The prompt is empty: send at least one token",
      );
    }
    if (room < 1) {
      throw badRequest(
        "prompt",
        `The prompt has ${prompt.length} tokens but the model's context is ${o.engine.maxModelLen}: shorten it`,
      );
    }
    const maxTokens = field<number>(body, "max_completion_tokens", "integer") ??
      field<number>(body, "max_tokens", "integer") ??
      Math.min(maxTokensDefault, room);
    try {
      const params = samplingParams({
        maxTokens,
        temperature: field<number>(body, "temperature", "number") ?? 1,
        topP: field<number>(body, "top_p", "number") ?? 1,
        topK: Math.max(0, field<number>(body, "top_k", "integer") ?? 0),
        ...(field<number>(body, "seed", "integer") !== undefined
          ? { seed: body.seed as number }
          : {}),
        stop: stops,
        ignoreEos: field<boolean>(body, "ignore_eos", "boolean") ?? false,
      }, { maxTokens: room });
      const streamOptions = field<Record<string, unknown>>(
        body,
        "stream_options",
        "object",
      );
      return {
        prompt,
        params,
        stream: field<boolean>(body, "stream", "boolean") ?? false,
        includeUsage: streamOptions?.include_usage === true,
      };
    } catch (error) {
      if (error instanceof SamplingParamsError) {
        const extra = error.field === "max_tokens"
          ? ` (the prompt has ${prompt.length} of ${o.engine.maxModelLen} context tokens)`
          : "";
        throw badRequest(error.field, error.message + extra);
      }
      throw error;
    }
  };

  const submit = (p: Prepared): RequestStream => {
    try {
      return o.engine.addRequest(p.prompt, p.params);
    } catch (error) {
      if (
        error instanceof RangeError || error instanceof RequestTooLargeError
      ) {
        throw badRequest("prompt", (error as Error).message);
      }
      throw error;
    }
  };

  const respond = (
    kind: "completion" | "chat",
    p: Prepared,
    done: Promise<void> | undefined,
  ): Response | Promise<Response> => {
    const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${
      Date.now().toString(36)
    }${(counter++).toString(36)}`;
    const stream = submit(p);
    const base = { id, created: created(), model: o.modelName };
    const usage = () => ({
      prompt_tokens: stream.seq.promptLength,
      completion_tokens: stream.seq.numOutput,
      total_tokens: stream.seq.promptLength + stream.seq.numOutput,
    });
    if (!p.stream) {
      // The connection closed before the response was delivered: abort.
      done?.catch(() => stream.abort());
      return stream.result().then((r) => {
        const choice = kind === "chat"
          ? {
            index: 0,
            message: { role: "assistant", content: r.text },
            logprobs: null,
            finish_reason: r.finishReason,
          }
          : {
            index: 0,
            text: r.text,
            logprobs: null,
            finish_reason: r.finishReason,
          };
        return Response.json({
          ...base,
          object: kind === "chat" ? "chat.completion" : "text_completion",
          choices: [choice],
          usage: usage(),
        });
      }, (error) => {
        throw failure(error);
      });
    }
    const object = kind === "chat"
      ? "chat.completion.chunk"
      : "text_completion";
    const chunk = (
      delta: string | null,
      finish: string | null,
      first = false,
    ) =>
      kind === "chat"
        ? {
          ...base,
          object,
          choices: [{
            index: 0,
            delta: delta === null
              ? {}
              : first
              ? { role: "assistant", content: delta }
              : { content: delta },
            logprobs: null,
            finish_reason: finish,
          }],
        }
        : {
          ...base,
          object,
          choices: [{
            index: 0,
            text: delta ?? "",
            logprobs: null,
            finish_reason: finish,
          }],
        };
    const encoder = new TextEncoder();
    const sse = (value: unknown) =>
      encoder.encode(
        `data: ${
          typeof value === "string" ? value : JSON.stringify(value)
        }\n\n`,
      );
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        try {
          if (kind === "chat") controller.enqueue(sse(chunk("", null, true)));
          for await (const delta of stream) {
            if (delta.text) controller.enqueue(sse(chunk(delta.text, null)));
          }
          if (stream.error) {
            controller.enqueue(sse(failure(stream.error).body));
          } else {
            controller.enqueue(sse(chunk(null, stream.finishReason ?? "stop")));
            if (p.includeUsage) {
              controller.enqueue(
                sse({ ...base, object, choices: [], usage: usage() }),
              );
            }
          }
          controller.enqueue(sse("[DONE]"));
          controller.close();
        } catch {
          // The client went away mid-write: stop generating, free the blocks.
          stream.abort();
        }
      },
      cancel() {
        stream.abort();
      },
    });
    done?.catch(() => stream.abort());
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        connection: "keep-alive",
      },
    });
  };

  const routes: Record<
    string,
    (request: Request, done?: Promise<void>) => Promise<Response> | Response
  > = {
    "POST /v1/completions": async (request, done) => {
      const body = await readJsonObject(request);
      const prompt = body.prompt;
      let ids: number[];
      if (typeof prompt === "string") ids = o.tokenizer.encode(prompt);
      else if (
        Array.isArray(prompt) && prompt.length === 1 &&
        typeof prompt[0] === "string"
      ) ids = o.tokenizer.encode(prompt[0]);
      else if (
        Array.isArray(prompt) && prompt.every((t) => Number.isInteger(t))
      ) {
        ids = prompt as number[];
        const vocab = o.engine.vocabSize;
        const bad = ids.findIndex((t) => t < 0 || t >= vocab);
        if (bad !== -1) {
          throw badRequest(
            "prompt",
            `prompt[${bad}] = ${ids[bad]} is not a token id: ids are 0..${
              vocab - 1
            }`,
          );
        }
      } else if (prompt === undefined) {
        throw badRequest(
          "prompt",
          "prompt is required: a string or an array of token ids",
        );
      } else {throw badRequest(
          "prompt",
          "prompt must be a string, a one-string array, or an array of token ids (batched prompts are not supported)",
        );}
      if (field<boolean>(body, "echo", "boolean")) {
        throw badRequest("echo", "echo is not supported: omit echo");
      }
      return await respond("completion", prepare(body, ids, 16), done);
    },
    "POST /v1/chat/completions": async (request, done) => {
      const body = await readJsonObject(request);
      const messages = field<unknown[]>(body, "messages", "array");
      if (!messages || messages.length === 0) {
        throw badRequest("messages", "messages must be a non-empty array");
      }
      messages.forEach((m, i) => {
        const msg = m as Record<string, unknown>;
        if (
          typeof m !== "object" || m === null ||
          !["system", "user", "assistant"].includes(msg.role as string)
        ) {
          throw badRequest(
            `messages[${i}].role`,
            `messages[${i}].role must be "system", "user" or "assistant"`,
          );
        }
        if (typeof msg.content !== "string") {
          throw badRequest(
            `messages[${i}].content`,
            `messages[${i}].content must be a string (text only)`,
          );
        }
      });
      const ids = o.tokenizer.encodeChat(messages as ChatMessage[]);
      return await respond(
        "chat",
        prepare(body, ids, Number.MAX_SAFE_INTEGER),
        done,
      );
    },
    "GET /v1/models": () =>
      Response.json({
        object: "list",
        data: [{
          id: o.modelName,
          object: "model",
          created: created(),
          owned_by: "kvplug",
          max_model_len: o.engine.maxModelLen,
        }],
      }),
    "GET /health": () => deviceLost?.getResponse() ?? new Response("ok\n"),
    "GET /metrics": () =>
      new Response(renderMetrics(o.engine), {
        headers: { "content-type": "text/plain; version=0.0.4" },
      }),
  };

  // info is Deno.serve's second argument: its `completed` promise rejects
  // when the client goes away before the response is delivered.
  return async (
    request: Request,
    info?: { completed?: Promise<void> },
  ): Promise<Response> => {
    const path = new URL(request.url).pathname;
    const route = routes[`${request.method} ${path}`];
    try {
      if (!route) {
        const known = Object.keys(routes).some((r) => r.endsWith(` ${path}`));
        throw known
          ? new HttpError(405, `${request.method} is not allowed on ${path}`)
          : new HttpError(
            404,
            `No route ${request.method} ${path}: see /v1/completions, /v1/chat/completions, /v1/models, /health, /metrics`,
            { type: "not_found_error" },
          );
      }
      if (deviceLost && request.method === "POST") throw deviceLost;
      return await route(request, info?.completed);
    } catch (error) {
      if (error instanceof HttpError) return error.getResponse();
      if (findBackendError(error)) return failure(error).getResponse();
      log(
        `Unexpected error on ${request.method} ${path}: ${
          (error as Error).stack ?? error
        }`,
      );
      return new HttpError(500, `Internal error: ${(error as Error).message}`)
        .getResponse();
    }
  };
}
