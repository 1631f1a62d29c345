import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { SERVE_FLAGS, serveOptionsFromFlags } from "./serve_options.ts";

// The serve-only flags alone: serveOptionsFromFlags reads no selection flag
// (tools/serve.ts parses both sets; server/ never imports tools/).
const parse = (...args: string[]) =>
  serveOptionsFromFlags(
    parseArgs({ args, options: SERVE_FLAGS, strict: true }).values,
  );

Deno.test("serveOptionsFromFlags() defaults to max_utilization with no scale source", () => {
  const o = parse();
  assert.equal(o.schedulingPolicy, "max_utilization");
  assert.equal(o.calculateKvScales, false);
  assert.equal(o.kvQuantParamsPath, undefined);
});

Deno.test("serveOptionsFromFlags() reads --scheduling-policy and refuses an unknown one", () => {
  assert.equal(
    parse("--scheduling-policy", "guaranteed_no_evict").schedulingPolicy,
    "guaranteed_no_evict",
  );
  assert.throws(
    () => parse("--scheduling-policy", "fcfs"),
    /--scheduling-policy: "fcfs" is not a scheduling policy: use max_utilization or guaranteed_no_evict/,
  );
});

Deno.test("serveOptionsFromFlags() takes one scale source: --kv-quant-params-path (alias --calibration) or --calculate-kv-scales", () => {
  assert.equal(
    parse("--kv-quant-params-path", "a.json").kvQuantParamsPath,
    "a.json",
  );
  assert.equal(parse("--calibration", "b.json").kvQuantParamsPath, "b.json");
  assert.equal(parse("--calculate-kv-scales").calculateKvScales, true);
  assert.throws(
    () => parse("--kv-quant-params-path", "a.json", "--calculate-kv-scales"),
    /--kv-quant-params-path "a.json" and --calculate-kv-scales were both given: the scales come from one source/,
  );
  assert.throws(
    () => parse("--kv-quant-params-path", "a.json", "--calibration", "b.json"),
    /are the same flag: give it once/,
  );
});

Deno.test("serveOptionsFromFlags() reads --ops-target (auto leaves the choice to the model) and refuses an unknown one", () => {
  assert.equal(parse().opsTarget, undefined);
  assert.equal(parse("--ops-target", "auto").opsTarget, undefined);
  assert.equal(parse("--ops-target", "typescript").opsTarget, "typescript");
  assert.equal(parse("--ops-target", "native").opsTarget, "native");
  assert.equal(parse("--ops-target", "webgpu").opsTarget, "webgpu");
  assert.throws(
    () => parse("--ops-target", "cuda"),
    /--ops-target: "cuda" is not an ops target: use auto, typescript, native, webgpu/,
  );
});
