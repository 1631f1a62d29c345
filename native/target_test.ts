// The native target factory: the probe's three answers (addon unusable,
// kernels missing, available with path and threads), create() refusing
// with the probe's reason without calling the backend's create, and the
// settings and addon reaching it when the kernels are there.
import assert from "node:assert/strict";
import type { AttentionBackend } from "../core/backend.ts";
import type { BackendCapabilities } from "../core/capabilities.ts";
import { type NativeProbe, probeNativeAddon } from "./probe.ts";
import {
  type NativeKernelExport,
  nativeKernelsAvailability,
  nativeTarget,
} from "./target.ts";
import type { NativeAddon } from "./types.ts";

// Only passed through: the factories must hand this very object on.
const CAPABILITIES = {} as BackendCapabilities;

const fakeAddon = {
  poolThreads: () => 3,
  xformersAttend: () => {},
} as unknown as NativeAddon;

const loaded: NativeProbe = {
  available: true,
  addon: fakeAddon,
  kernelPath: "avx2",
  kernelReason: "best",
  features: [],
};

Deno.test("nativeKernelsAvailability passes the addon's own reason on", () => {
  const reason = "native addon not built: run deno task build:native";
  assert.deepEqual(
    nativeKernelsAvailability("xformers", "xformersAttend", {
      available: false,
      reason,
    }),
    { available: false, reason },
  );
});

Deno.test("nativeKernelsAvailability: missing kernels say rebuild, present ones give path and threads", () => {
  assert.deepEqual(
    nativeKernelsAvailability("flashinfer", "flashinferRun", loaded),
    {
      available: false,
      reason:
        "native addon has no flashinfer kernels (an older build): rebuild with deno task build:native",
    },
  );
  assert.deepEqual(
    nativeKernelsAvailability("xformers", "xformersAttend", loaded),
    { available: true, detail: "kernel path avx2, 3 threads" },
  );
});

Deno.test("nativeTarget: create() refuses with the probe's reason and never calls the backend", () => {
  let called = false;
  const target = nativeTarget({
    backend: "toy",
    capabilities: CAPABILITIES,
    // No addon has this export: the probe fails whether or not it is built.
    kernels: "toyAttend" as NativeKernelExport,
    create: () => {
      called = true;
      return {} as AttentionBackend;
    },
  });
  assert.equal(target.target, "native");
  assert.equal(target.capabilities, CAPABILITIES);
  assert.equal(target.extraReasons, undefined);
  const probe = target.probe();
  assert.ok(!("then" in probe) && !probe.available);
  assert.throws(
    () => target.create(),
    (e: Error) =>
      e.message === `Backend toy cannot be created on native: ${probe.reason}`,
  );
  assert.equal(called, false);
});

const addonProbe = probeNativeAddon();
Deno.test({
  name: "nativeTarget: create() hands the loaded addon and the settings on" +
    (addonProbe.available ? "" : ` (ignored: ${addonProbe.reason})`),
  ignore: !addonProbe.available,
  fn: async () => {
    const made = {} as AttentionBackend;
    const seen: unknown[] = [];
    const target = nativeTarget({
      backend: "toy",
      capabilities: CAPABILITIES,
      kernels: "poolThreads",
      extraReasons: () => ["no"],
      create: (addon, options) => {
        seen.push(addon, options);
        return made;
      },
    });
    assert.deepEqual(target.extraReasons?.(undefined as never), ["no"]);
    const probe = await target.probe();
    assert.ok(probe.available);
    assert.match(probe.detail ?? "", /^kernel path \w+, \d+ threads$/);
    const options = { settings: { kernelPath: "scalar" } };
    assert.equal(await target.create(options), made);
    assert.equal(typeof (seen[0] as NativeAddon).xformersAttend, "function");
    assert.equal(seen[1], options);
  },
});
