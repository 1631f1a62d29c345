import assert from "node:assert/strict";
import { SERVE_FLAGS } from "../server/serve_options.ts";
import {
  parseSelectionArgs,
  selectOptionsFromFlags,
  UsageError,
} from "./cli_options.ts";

const select = (args: string[]) =>
  selectOptionsFromFlags(parseSelectionArgs(args, SERVE_FLAGS).values);

Deno.test("serve flags: --backend-setting is repeatable and reaches SelectOptions.backendSettings as text", () => {
  const o = select([
    "--backend",
    "fa3",
    "--backend-setting",
    "accumulationPromotion=false",
    "--backend-setting",
    "packedDot=shift",
  ]);
  assert.deepEqual(o.backendSettings, {
    accumulationPromotion: "false",
    packedDot: "shift",
  });
  assert.equal(select([]).backendSettings, undefined);
});

Deno.test("serve flags: a --backend-setting without NAME=VALUE, or given twice, is a usage error with the fix", () => {
  assert.throws(
    () => select(["--backend-setting", "=1"]),
    (e: Error) =>
      e instanceof UsageError &&
      /"=1" is not NAME=VALUE: write e.g. --backend-setting accumulationPromotion=false/
        .test(e.message),
  );
  assert.throws(
    () => select(["--backend-setting", "a=1", "--backend-setting", "a=2"]),
    /--backend-setting: a is given twice \(1 and 2\): give it once/,
  );
});

const cli = async (tool: string, args: string[]) => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(tool, import.meta.url).pathname, ...args],
  }).output();
  return {
    code: out.code,
    text: new TextDecoder().decode(out.stdout),
    err: new TextDecoder().decode(out.stderr),
  };
};

Deno.test("deno task conformance --backend-setting: an unknown setting exits 2 naming the backend's settings", async () => {
  const r = await cli("./conformance.ts", [
    "--backend",
    "fa3",
    "--backend-setting",
    "promotion=false",
  ]);
  assert.equal(r.code, 2, r.err);
  assert.match(
    r.err,
    /No backend in use takes the setting "promotion": no loaded backend declares it; in use: fa3\/native, fa3\/webgpu/,
  );
});

Deno.test("deno task select --backend-setting prints the settings in force under In use", async () => {
  const r = await cli("./select.ts", [
    "--backend",
    "flashinfer",
    "--target",
    "native",
    "--backend-setting",
    "kernelPath=scalar",
  ]);
  if (r.code !== 0 && /native addon/.test(r.err)) return; // no addon here
  assert.equal(r.code, 0, r.err);
  assert.match(
    r.text,
    /flashinfer\/native: kernel path \S+, \d+ threads; settings kernelPath=scalar, maxChunkKeys=2147483647/,
  );
});
