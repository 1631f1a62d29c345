import assert from "node:assert/strict";
import { probeNativeAddon } from "../native/mod.ts";

const run = async (env: Record<string, string> = {}) => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./select.ts", import.meta.url).pathname],
    env,
  }).output();
  return {
    code: out.code,
    text: new TextDecoder().decode(out.stdout),
    err: new TextDecoder().decode(out.stderr),
  };
};

Deno.test("deno task select names the native kernel path it will run", async () => {
  const { code, text, err } = await run({ KVPLUG_NATIVE_PATH: "scalar" });
  assert.equal(code, 0, err);
  assert.match(text, /^Attention plan for demo-gemma2/);
  assert.match(text, /\nIn use:\n/);
  if (probeNativeAddon().available) {
    assert.match(text, /\/native: kernel path scalar, \d+ threads/);
  }
});
