// The whole conformance suite on each lower kernel path (avx2, scalar) and
// on the best path with tiny split-KV chunks (so that every decode runs
// several chunks and the log-sum-exp merge). Paths are passed as settings,
// never through KVPLUG_NATIVE_PATH: test files share one environment. A
// path this CPU lacks is ignored with the reason.

import type { BackendDefinition } from "../../core/backend.ts";
import { registerConformanceTests } from "../../conformance/register.ts";
import { KERNEL_PATHS, probeNativeAddon } from "../../native/mod.ts";
import flashinfer from "./mod.ts";
import { FLASHINFER_NATIVE_TARGET } from "./mod.ts";
import { SKIP_REASON } from "./native_test_support.ts";

const probe = probeNativeAddon();
const best = probe.available ? probe.addon.kernelSelection().best : "scalar";

const variants = [
  { label: "avx2", settings: { kernelPath: "avx2" } },
  { label: "scalar", settings: { kernelPath: "scalar" } },
  { label: "split32", settings: { maxChunkKeys: 32 } },
] as const;

for (const { label, settings } of variants) {
  const path = "kernelPath" in settings ? settings.kernelPath : best;
  const missing = KERNEL_PATHS.indexOf(path) > KERNEL_PATHS.indexOf(best)
    ? `this CPU's best path is ${best}`
    : undefined;
  const skip = SKIP_REASON ?? missing;
  if (skip) {
    Deno.test({
      name: `flashinfer native ${label} (ignored: ${skip})`,
      ignore: true,
      fn() {},
    });
    continue;
  }
  const definition: BackendDefinition = {
    ...flashinfer,
    name: `flashinfer[${label}]`,
    targets: [{
      ...FLASHINFER_NATIVE_TARGET,
      create: (o) =>
        FLASHINFER_NATIVE_TARGET.create({
          settings: { ...o?.settings, ...settings },
        }),
    }],
  };
  await registerConformanceTests(definition, { targets: ["native"] });
}
