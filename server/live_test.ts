// The server on a loopback socket: the official openai client, a client that
// disconnects mid-stream, and 64 concurrent streaming clients. Bounded in
// count and time; it stops by itself.
import assert from "node:assert/strict";
import OpenAI from "openai";
import { createApp } from "./app.ts";
import { letters, testEngine } from "./test_support.ts";

async function serve(state: { delayMs?: number } = {}) {
  const engine = await testEngine(state);
  const app = createApp({
    engine,
    tokenizer: letters,
    modelName: "counting",
    log: () => {},
  });
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
  }, app);
  const url = `http://127.0.0.1:${server.addr.port}`;
  return {
    engine,
    url,
    async close() {
      await server.shutdown();
      await engine.shutdown();
    },
  };
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(text.match(new RegExp(`^${name} (\\S+)$`, "m"))![1]);
}

Deno.test("the openai npm client completes, chats, streams and stops against the server", async () => {
  const s = await serve();
  try {
    const client = new OpenAI({
      baseURL: `${s.url}/v1`,
      apiKey: "unused",
      maxRetries: 0,
    });
    const c = await client.completions.create({
      model: "counting",
      prompt: "abc",
      max_tokens: 3,
      temperature: 0,
    });
    assert.equal(c.choices[0].text, "def");
    const chat = await client.chat.completions.create({
      model: "counting",
      messages: [{ role: "user", content: "x" }],
      max_tokens: 2,
      temperature: 0,
    });
    assert.equal(chat.choices[0].message.content, "yz");
    let streamed = "";
    for await (
      const chunk of await client.completions.create({
        model: "counting",
        prompt: "a",
        max_tokens: 5,
        temperature: 0,
        stream: true,
      })
    ) {
      streamed += chunk.choices[0]?.text ?? "";
    }
    assert.equal(streamed, "bcdef");
    const stopped = await client.completions.create({
      model: "counting",
      prompt: "a",
      max_tokens: 9,
      temperature: 0,
      stop: ["d"],
    });
    assert.equal(stopped.choices[0].text, "bc");
    assert.equal(stopped.choices[0].finish_reason, "stop");
    await assert.rejects(
      client.completions.create({ model: "other", prompt: "a" }),
      (e: Error & { status?: number }) =>
        e.status === 400 && /does not exist/.test(e.message),
    );
  } finally {
    await s.close();
  }
});

Deno.test("a client that disconnects mid-stream has its request aborted and its blocks freed", async () => {
  const s = await serve({ delayMs: 5 });
  try {
    const abort = new AbortController();
    const res = await fetch(`${s.url}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({
        model: "counting",
        prompt: "abc",
        max_tokens: 100,
        ignore_eos: true,
        stream: true,
      }),
      signal: abort.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    assert.ok(
      await metric(s.url, "kvplug_kv_blocks_used") > 0,
      "the request holds blocks while streaming",
    );
    abort.abort();
    await reader.cancel().catch(() => {});
    const deadline = Date.now() + 5000;
    while (await metric(s.url, "kvplug_kv_blocks_used") > 0) {
      assert.ok(
        Date.now() < deadline,
        "blocks were not freed within 5 s of the disconnect",
      );
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(await metric(s.url, "kvplug_requests_running"), 0);
  } finally {
    await s.close();
  }
});

Deno.test("64 concurrent streaming clients get every token exactly once, and no block leaks", async () => {
  const s = await serve();
  try {
    const prompts = Array.from(
      { length: 64 },
      (_, i) => String.fromCharCode(97 + (i % 20)),
    );
    const texts = await Promise.all(prompts.map(async (p) => {
      const res = await fetch(`${s.url}/v1/completions`, {
        method: "POST",
        body: JSON.stringify({
          model: "counting",
          prompt: p,
          max_tokens: 20,
          ignore_eos: true,
          temperature: 0,
          stream: true,
        }),
      });
      const body = await res.text();
      assert.ok(body.endsWith("data: [DONE]\n\n"));
      return body.split("\n\n").filter((e) => e.startsWith("data: {")).map((
        e,
      ) => JSON.parse(e.slice(6)).choices[0].text)
        .join("");
    }));
    texts.forEach((t, i) => {
      const start = prompts[i].charCodeAt(0) - 97 + 1;
      const want = Array.from({ length: 20 }, (_, k) => {
        const id = (start + k) % 32;
        return id < 26 ? String.fromCharCode(97 + id) : "#";
      }).join("");
      assert.equal(t, want, `client ${i}`);
    });
    assert.equal(await metric(s.url, "kvplug_kv_blocks_used"), 0);
    assert.ok(
      Math.max(...s.engine.metrics.batchSizes) > 8,
      "requests were batched together",
    );
  } finally {
    await s.close();
  }
});
