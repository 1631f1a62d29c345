// The native test gate: a backend whose kernels the addon lacks gets a
// reason (never a silent pass), and one whose kernels are there runs when
// the addon does.
import assert from "node:assert/strict";
import { probeNativeAddon } from "./probe.ts";
import type { NativeKernelExport } from "./target.ts";
import { nativeTestGate } from "./test_support.ts";

Deno.test("nativeTestGate: missing kernels give a reason to ignore the tests", async () => {
  const gate = await nativeTestGate("toy", "toyAttend" as NativeKernelExport);
  const probe = probeNativeAddon();
  assert.equal(
    gate.skipReason,
    probe.available
      ? "native addon has no toy kernels (an older build): rebuild with deno task build:native"
      : gate.skipReason,
  );
  assert.ok(gate.skipReason !== undefined);
});

const xformers = await nativeTestGate("xformers", "xformersAttend");
Deno.test("nativeTestGate: the tests run exactly when the addon loads with the kernels", () => {
  assert.equal(xformers.skipReason === undefined, probeNativeAddon().available);
});
xformers.test("nativeTestGate: test() registers a test that runs", () => {});
