// The WebGPU target factory: the probe's answers (no adapter: the shared
// probe's reason; an adapter: its name, features or the backend's own
// detail, and `software` on a fallback adapter), and create() handing the
// settings on.
import assert from "node:assert/strict";
import type { AttentionBackend } from "../core/backend.ts";
import type { BackendCapabilities } from "../core/capabilities.ts";
import { probeWebGpu } from "./probe.ts";
import {
  type AvailableWebGpuProbe,
  webGpuAvailability,
  webGpuTarget,
} from "./target.ts";

// Only passed through: the factories must hand this very object on.
const CAPABILITIES = {} as BackendCapabilities;

function adapter(
  features: readonly GPUFeatureName[],
  isFallbackAdapter: boolean,
): AvailableWebGpuProbe {
  return {
    available: true,
    device: {} as GPUDevice,
    adapterName: "Some GPU",
    features,
    isFallbackAdapter,
  };
}

Deno.test("webGpuAvailability passes the reason on when there is no adapter", () => {
  const reason = "no WebGPU adapter found: install a Vulkan driver";
  assert.deepEqual(webGpuAvailability({ available: false, reason }), {
    available: false,
    reason,
  });
});

Deno.test("webGpuAvailability: adapter name, features by default, software flag", () => {
  assert.deepEqual(webGpuAvailability(adapter([], false)), {
    available: true,
    detail: 'WebGPU adapter "Some GPU"',
    software: false,
  });
  assert.deepEqual(
    webGpuAvailability(adapter(["shader-f16", "subgroups"], true)),
    {
      available: true,
      detail: 'WebGPU adapter "Some GPU" with shader-f16, subgroups',
      software: true,
    },
  );
  assert.deepEqual(
    webGpuAvailability(
      adapter(["shader-f16"], false),
      (p) => ` (${p.features.length} feature)`,
    ),
    {
      available: true,
      detail: 'WebGPU adapter "Some GPU" (1 feature)',
      software: false,
    },
  );
});

Deno.test("webGpuTarget: the probe is the shared one's, create() gets the settings", async () => {
  const made = {} as AttentionBackend;
  const seen: unknown[] = [];
  const target = webGpuTarget({
    capabilities: CAPABILITIES,
    detail: () => " (toy)",
    extraReasons: () => ["no"],
    create: (options) => {
      seen.push(options);
      return made;
    },
  });
  assert.equal(target.target, "webgpu");
  assert.equal(target.capabilities, CAPABILITIES);
  assert.deepEqual(target.extraReasons?.(undefined as never), ["no"]);
  assert.deepEqual(
    await target.probe(),
    webGpuAvailability(await probeWebGpu(), () => " (toy)"),
  );
  const options = { settings: { x: 1 } };
  assert.equal(await target.create(options), made);
  assert.deepEqual(seen, [options]);
  assert.equal(
    webGpuTarget({ capabilities: CAPABILITIES, create: () => made })
      .extraReasons,
    undefined,
  );
});
