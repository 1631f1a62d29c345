// `deno task serve` as a process: start-up output, a real completion from the
// demo model, SIGTERM with a request in flight (bounded, exit 0), and a
// third-party backend that throws while loading (a clear start-up error).
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url).pathname;
const modelDir = `${root}models/demo-gemma2`;
const haveModel = await Deno.stat(`${modelDir}/model.safetensors`).then(
  () => true,
  () => false,
);

function spawnServe(args: string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-env",
      "--allow-ffi",
      "--allow-net",
      `${root}tools/serve.ts`,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
    cwd: root,
  }).spawn();
}

/** Reads stdout until the "Serving" line; returns the URL and everything printed. */
async function waitForUrl(
  child: Deno.ChildProcess,
): Promise<{ url: string; printed: string; rest: ReadableStream<string> }> {
  const lines = child.stdout.pipeThrough(new TextDecoderStream());
  const reader = lines.getReader();
  let printed = "";
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    printed += value;
    const m = printed.match(/on (http:\/\/127\.0\.0\.1:\d+)\/v1/);
    if (m) {
      reader.releaseLock();
      return { url: m[1], printed, rest: lines };
    }
  }
  throw new Error(`The server did not start:\n${printed}`);
}

Deno.test({
  name:
    "deno task serve prints the plan and the pool, completes, and exits 0 on SIGTERM with a request in flight",
  ignore: !haveModel,
  async fn() {
    const child = spawnServe([
      "--port",
      "0",
      "--shutdown-timeout",
      "2",
      "--kv-cache-dtype",
      "fp8_e4m3",
      "--kv-cache-dtype-skip-layers",
      "sliding_window",
    ]);
    const { url, printed, rest } = await waitForUrl(child);
    assert.match(printed, /Attention plan for .*demo-gemma2/);
    assert.match(printed, /kept in fp32: sliding-window layer/);
    assert.match(printed, /KV pool: \d+ blocks of 16 tokens/);
    const done = await (await fetch(`${url}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({
        model: "demo-gemma2",
        prompt: "In the beginning",
        max_tokens: 8,
        temperature: 0,
      }),
    })).json();
    assert.equal(done.usage.completion_tokens, 8);
    assert.ok(done.choices[0].text.length > 0);
    // A long stream in flight, then SIGTERM: the process must end it and exit 0.
    const streaming = await fetch(`${url}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({
        model: "demo-gemma2",
        prompt: "And",
        max_tokens: 900,
        ignore_eos: true,
        stream: true,
      }),
    });
    const reader = streaming.body!.getReader();
    await reader.read();
    const start = Date.now();
    child.kill("SIGTERM");
    while (
      !(await reader.read()).done
    ) { /* drain until the server ends the stream */ }
    const status = await child.status;
    let out = "";
    for await (const chunk of rest) out += chunk;
    await child.stderr.cancel();
    assert.equal(status.code, 0, out);
    assert.ok(
      Date.now() - start < 15_000,
      "shutdown took longer than its bound",
    );
    assert.match(out, /SIGTERM: no new requests/);
  },
});

Deno.test({
  name:
    "deno task serve refuses to start with a backend module that throws while loading",
  ignore: !haveModel,
  async fn() {
    const child = spawnServe([
      "--port",
      "0",
      "--backend",
      "./tests/fixtures/backend_throws.ts",
    ]);
    const { code, stderr } = await child.output();
    assert.equal(code, 2);
    assert.match(
      new TextDecoder().decode(stderr),
      /Cannot load backend module \.\/tests\/fixtures\/backend_throws\.ts: .*GPU driver exploded/,
    );
  },
});
