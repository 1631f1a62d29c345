import assert from "node:assert/strict";
import {
  PipelineCache,
  pipelineCacheFor,
  probeWebGpu,
  WgslCompileError,
} from "./mod.ts";

const probe = await probeWebGpu();
const skip = probe.available ? undefined : probe.reason;
const named = (name: string) => skip ? `${name} (skipped: ${skip})` : name;

const SOURCE = `
override SCALE: u32 = 1u;
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1)
fn main() { out[0] = 7u * SCALE; }`;

Deno.test({
  name: named(
    "PipelineCache compiles a source once and one pipeline per set of override constants",
  ),
  ignore: skip !== undefined,
  fn: async () => {
    if (!probe.available) return;
    const cache = new PipelineCache(probe.device);
    const a = await cache.compute(SOURCE, { constants: { SCALE: 2 } });
    assert.equal(await cache.compute(SOURCE, { constants: { SCALE: 2 } }), a);
    const b = await cache.compute(SOURCE, { constants: { SCALE: 3 } });
    assert.notEqual(b, a);
    assert.deepEqual(cache.size, { modules: 1, pipelines: 2 });
    assert.equal(
      pipelineCacheFor(probe.device),
      pipelineCacheFor(probe.device),
    );
  },
});

Deno.test({
  name: named(
    "PipelineCache reports a WGSL error with the compiler's message and does not cache it",
  ),
  ignore: skip !== undefined,
  fn: async () => {
    if (!probe.available) return;
    const cache = new PipelineCache(probe.device);
    const bad = "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }";
    await assert.rejects(
      cache.compute(bad, { label: "broken" }),
      (e: Error) =>
        e instanceof WgslCompileError &&
        /^WGSL pipeline "broken" failed to compile: .*u32/s.test(e.message),
    );
    assert.deepEqual(cache.size, { modules: 0, pipelines: 0 });
  },
});
