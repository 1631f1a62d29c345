import assert from "node:assert/strict";
import { createApp } from "./app.ts";
import { type Fault, letters, testEngine } from "./test_support.ts";
import { BackendShapeError, DeviceLostError } from "../core/backend_errors.ts";

const MODEL = "counting";

async function setup(state: { nan?: boolean } = {}, fault?: Fault) {
  const engine = await testEngine(state, { fault });
  const logged: string[] = [];
  const app = createApp({
    engine,
    tokenizer: letters,
    modelName: MODEL,
    log: (m) => logged.push(m),
  });
  const post = (path: string, body: unknown) =>
    app(
      new Request(`http://x${path}`, {
        method: "POST",
        body: body instanceof Uint8Array
          ? body as Uint8Array<ArrayBuffer>
          : typeof body === "string"
          ? body
          : JSON.stringify(body),
      }),
    );
  return { engine, app, post, logged };
}

async function sseEvents(res: Response): Promise<unknown[]> {
  const text = await res.text();
  return text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) =>
    e.slice(6)
  ).map((d) => d === "[DONE]" ? d : JSON.parse(d));
}

Deno.test("POST /v1/completions returns the text, finish_reason and usage", async () => {
  const { engine, post } = await setup();
  const res = await post("/v1/completions", {
    model: MODEL,
    prompt: "abc",
    max_tokens: 4,
    temperature: 0,
  });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.object, "text_completion");
  assert.equal(body.choices[0].text, "defg");
  assert.equal(body.choices[0].finish_reason, "length");
  assert.deepEqual(body.usage, {
    prompt_tokens: 3,
    completion_tokens: 4,
    total_tokens: 7,
  });
  await engine.shutdown();
});

Deno.test("POST /v1/completions streams OpenAI chunks ending with [DONE] and a usage chunk when asked", async () => {
  const { engine, post } = await setup();
  const res = await post("/v1/completions", {
    model: MODEL,
    prompt: "abc",
    max_tokens: 4,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const events = await sseEvents(res);
  assert.equal(events.at(-1), "[DONE]");
  const chunks = events.slice(0, -1) as {
    choices: { text: string; finish_reason: string | null }[];
    usage?: unknown;
  }[];
  assert.equal(chunks.map((c) => c.choices[0]?.text ?? "").join(""), "defg");
  assert.equal(chunks.at(-2)!.choices[0].finish_reason, "length");
  assert.deepEqual(chunks.at(-1)!.usage, {
    prompt_tokens: 3,
    completion_tokens: 4,
    total_tokens: 7,
  });
  await engine.shutdown();
});

Deno.test("POST /v1/chat/completions answers as the assistant, streamed and not", async () => {
  const { engine, post } = await setup();
  const res = await post("/v1/chat/completions", {
    model: MODEL,
    messages: [{ role: "user", content: "ab" }],
    max_tokens: 3,
    temperature: 0,
  });
  const body = await res.json();
  assert.deepEqual(body.choices[0].message, {
    role: "assistant",
    content: "cde",
  });
  const events = await sseEvents(
    await post("/v1/chat/completions", {
      model: MODEL,
      messages: [{ role: "user", content: "ab" }],
      max_tokens: 3,
      temperature: 0,
      stream: true,
    }),
  ) as { choices: { delta: { role?: string; content?: string } }[] }[];
  assert.equal(events[0].choices[0].delta.role, "assistant");
  assert.equal(
    events.slice(0, -1).map((e) => e.choices[0].delta.content ?? "").join(""),
    "cde",
  );
  await engine.shutdown();
});

Deno.test("a stop sequence ends the completion before it", async () => {
  const { engine, post } = await setup();
  const body = await (await post("/v1/completions", {
    model: MODEL,
    prompt: "a",
    max_tokens: 10,
    temperature: 0,
    stop: ["ef"],
  })).json();
  assert.equal(body.choices[0].text, "bcd");
  assert.equal(body.choices[0].finish_reason, "stop");
  await engine.shutdown();
});

Deno.test("GET /v1/models, /health and /metrics answer", async () => {
  const { engine, app } = await setup();
  const models = await (await app(new Request("http://x/v1/models"))).json();
  assert.equal(models.data[0].id, MODEL);
  assert.equal(
    await (await app(new Request("http://x/health"))).text(),
    "ok\n",
  );
  const metrics = await (await app(new Request("http://x/metrics"))).text();
  for (
    const name of [
      "kvplug_requests_running",
      "kvplug_kv_blocks_free",
      "kvplug_kv_cache_usage_ratio",
      "kvplug_preemptions_total",
      "kvplug_time_to_first_token_seconds_bucket",
    ]
  ) {
    assert.match(metrics, new RegExp(`^${name}`, "m"));
  }
  await engine.shutdown();
});

Deno.test("bad requests get a 400 naming the field, and the server keeps serving", async () => {
  const { engine, post } = await setup();
  const cases: [unknown, string, RegExp][] = [
    ["{not json", "body", /not valid JSON/],
    [new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), "body", /not valid UTF-8/],
    [[1, 2], "body", /must be a JSON object/],
    [{ prompt: "a" }, "model", /model is required/],
    [
      { model: "gpt-9", prompt: "a" },
      "model",
      /The model "gpt-9" does not exist/,
    ],
    [
      { model: MODEL, prompt: "a", max_tokens: "5" },
      "max_tokens",
      /max_tokens must be an integer, got "5"/,
    ],
    [
      { model: MODEL, prompt: "a", max_tokens: -1 },
      "max_tokens",
      /max_tokens must be an integer in \[1, 127\], got -1/,
    ],
    [
      { model: MODEL, prompt: "a", max_tokens: 1e9 },
      "max_tokens",
      /max_tokens must be an integer in \[1, 127\].*the prompt has 1 of 128/,
    ],
    [
      { model: MODEL, prompt: "a".repeat(200) },
      "prompt",
      /200 tokens but the model's context is 128/,
    ],
    [{ model: MODEL, prompt: "" }, "prompt", /The prompt is empty/],
    [
      { model: MODEL, prompt: [1, 99] },
      "prompt",
      /prompt\[1\] = 99 is not a token id/,
    ],
    [
      { model: MODEL, prompt: "a", temperature: -2 },
      "temperature",
      /temperature must be a number in \[0, 100\]/,
    ],
    [{ model: MODEL, prompt: "a", n: 3 }, "n", /n must be 1/],
    [
      { model: MODEL, prompt: "a", stop: 5 },
      "stop",
      /stop must be a string or an array of strings/,
    ],
    [{ model: MODEL }, "prompt", /prompt is required/],
  ];
  for (const [body, param, message] of cases) {
    const res = await post("/v1/completions", body);
    assert.equal(res.status, 400, JSON.stringify(body));
    const err = (await res.json()).error;
    assert.equal(err.param, param, JSON.stringify(body));
    assert.match(err.message, message);
    assert.equal(err.type, "invalid_request_error");
  }
  const chat = await post("/v1/chat/completions", {
    model: MODEL,
    messages: [{ role: "robot", content: "x" }],
  });
  assert.equal((await chat.json()).error.param, "messages[0].role");
  const ok = await post("/v1/completions", {
    model: MODEL,
    prompt: "a",
    max_tokens: 2,
    temperature: 0,
  });
  assert.equal((await ok.json()).choices[0].text, "bc");
  assert.equal(engine.cache.numUsedBlocks, 0);
  await engine.shutdown();
});

Deno.test("a backend that returns NaN fails the request with a 500 naming the backend", async () => {
  const { engine, post } = await setup({ nan: true });
  const res = await post("/v1/completions", {
    model: MODEL,
    prompt: "a",
    max_tokens: 2,
  });
  assert.equal(res.status, 500);
  assert.match(
    (await res.json()).error.message,
    /NaN logits \(attention backends: reference\/reference\)/,
  );
  await engine.shutdown();
});

Deno.test("a backend that throws mid-step gets a 500 naming it and the layer, its blocks are freed and the next request is served", async () => {
  const fault: Fault = { error: new TypeError("x is undefined") };
  const { engine, post, logged } = await setup({}, fault);
  const request = {
    model: MODEL,
    prompt: "abc",
    max_tokens: 2,
    temperature: 0,
  };
  const res = await post("/v1/completions", request);
  assert.equal(res.status, 500);
  const { error } = await res.json();
  assert.equal(error.type, "server_error");
  assert.equal(error.code, "backend_error");
  assert.equal(
    error.message,
    "Backend faulty (reference) failed on layer 0: TypeError: x is undefined: this is a bug in the backend, not in the request: report it to the backend's authors with this message",
  );
  assert.equal(logged.length, 1);
  assert.equal(engine.cache.numUsedBlocks, 0);
  // A typed shape error from a backend is its bug too: 500, never 400.
  fault.error = new BackendShapeError("keys has 3 elements, expected 4", {
    backend: "faulty",
    target: "reference",
  });
  const streamed = await post("/v1/completions", { ...request, stream: true });
  const events = await sseEvents(streamed);
  assert.match(
    (events[0] as { error: { message: string } }).error.message,
    /^Backend faulty \(reference\) failed on layer 0: BackendShapeError: keys has 3 elements, expected 4: this is a bug in the backend/,
  );
  assert.equal(engine.cache.numUsedBlocks, 0);
  fault.error = undefined;
  const ok = await post("/v1/completions", request);
  assert.equal(ok.status, 200);
  assert.equal((await ok.json()).choices[0].text, "de");
  await engine.shutdown();
});

Deno.test("a lost device gets a 503 and the server refuses requests (and /health) from then on", async () => {
  const fault: Fault = {
    error: new DeviceLostError("the driver was reset", {
      backend: "faulty",
      target: "reference",
      cause: { reason: "unknown", message: "the driver was reset" },
    }),
  };
  const { engine, app, post, logged } = await setup({}, fault);
  const request = { model: MODEL, prompt: "abc", max_tokens: 2 };
  const res = await post("/v1/completions", request);
  assert.equal(res.status, 503);
  const { error } = await res.json();
  assert.equal(error.type, "service_unavailable");
  assert.equal(error.code, "device_lost");
  assert.match(
    error.message,
    /^The reference device of backend faulty was lost: the driver was reset: .* refuses requests until it is restarted$/,
  );
  assert.equal(engine.cache.numUsedBlocks, 0);
  fault.error = undefined;
  assert.equal((await post("/v1/completions", request)).status, 503);
  const health = await app(new Request("http://x/health"));
  assert.equal(health.status, 503);
  await health.body?.cancel();
  assert.equal(logged.filter((m) => m.startsWith("Refusing")).length, 1);
  await engine.shutdown();
});

Deno.test("unknown routes and methods get 404 and 405 with OpenAI-style bodies", async () => {
  const { engine, app } = await setup();
  assert.equal((await app(new Request("http://x/v2/nothing"))).status, 404);
  const res = await app(new Request("http://x/v1/completions"));
  assert.equal(res.status, 405);
  assert.match(
    (await res.json()).error.message,
    /GET is not allowed on \/v1\/completions/,
  );
  await engine.shutdown();
});
