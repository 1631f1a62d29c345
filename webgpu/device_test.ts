import assert from "node:assert/strict";
import {
  OPTIONAL_FEATURES,
  probeWebGpu,
  RAISED_LIMITS,
  requestWebGpuDevice,
  sharedWebGpuDevice,
  WebGpuUnavailableError,
} from "./mod.ts";

const probe = await probeWebGpu();
const skip = probe.available ? undefined : probe.reason;
const named = (name: string) => skip ? `${name} (skipped: ${skip})` : name;

Deno.test({
  name: named(
    "probeWebGpu() reports the adapter, and the device has the adapter's buffer limits",
  ),
  ignore: skip !== undefined,
  fn: async () => {
    if (!probe.available) return;
    const adapter = (await navigator.gpu.requestAdapter())!;
    assert.ok(probe.adapterName.length > 0);
    for (const limit of RAISED_LIMITS) {
      assert.equal(probe.device.limits[limit], adapter.limits[limit], limit);
    }
    // Optional features: requested exactly when the adapter has them.
    assert.deepEqual(
      [...probe.features].sort(),
      OPTIONAL_FEATURES.filter((f) => adapter.features.has(f)).sort(),
    );
    assert.ok(probe.features.every((f) => probe.device.features.has(f)));
  },
});

Deno.test({
  name: named("sharedWebGpuDevice() hands out one device until it is lost"),
  ignore: skip !== undefined,
  fn: async () => {
    const a = await sharedWebGpuDevice();
    assert.equal((await sharedWebGpuDevice()).device, a.device);
    a.device.destroy();
    await a.device.lost;
    const b = await sharedWebGpuDevice();
    assert.notEqual(b.device, a.device);
    assert.equal((await sharedWebGpuDevice()).device, b.device);
  },
});

Deno.test("requestWebGpuDevice() says why when this runtime has no navigator.gpu", async () => {
  const gpu = Object.getOwnPropertyDescriptor(Navigator.prototype, "gpu");
  Object.defineProperty(Navigator.prototype, "gpu", {
    get: () => undefined,
    configurable: true,
  });
  try {
    await assert.rejects(
      requestWebGpuDevice(),
      (e: Error) =>
        e instanceof WebGpuUnavailableError &&
        /^no WebGPU adapter found: navigator\.gpu is undefined/.test(e.message),
    );
  } finally {
    if (gpu) Object.defineProperty(Navigator.prototype, "gpu", gpu);
  }
});

Deno.test("requestWebGpuDevice() says why when no adapter exists", async () => {
  const original = GPU.prototype.requestAdapter;
  GPU.prototype.requestAdapter = () => Promise.resolve(null);
  try {
    await assert.rejects(
      requestWebGpuDevice(),
      /^WebGpuUnavailableError: no WebGPU adapter found: requestAdapter\(\) returned null; install a GPU driver/,
    );
  } finally {
    GPU.prototype.requestAdapter = original;
  }
});
