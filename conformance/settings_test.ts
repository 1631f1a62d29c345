import assert from "node:assert/strict";
import fa3 from "../backends/fa3/mod.ts";
import referenceBackend from "../backends/reference/mod.ts";
import type {
  BackendDefinition,
  CreateBackendOptions,
} from "../core/backend.ts";
import { defineBackend } from "../core/define_backend.ts";
import { runConformance } from "./runner.ts";

// defineBackend() puts the settings gate in front of the spy, so the spy
// sees what the kernels get.
function spied(seen: Record<string, unknown>[]): BackendDefinition {
  return defineBackend({
    ...fa3,
    targets: fa3.targets.map((t) => ({
      ...t,
      create: (o?: CreateBackendOptions) => {
        seen.push({ ...o?.settings });
        return t.create(o);
      },
    })),
  });
}

const native = await fa3.targets[0].probe();

Deno.test({
  name:
    "runConformance() creates every instance with the given settings, and a case's own settings merge over them",
  ignore: !native.available,
  fn: async () => {
    const seen: Record<string, unknown>[] = [];
    const report = await runConformance(spied(seen), {
      targets: ["native"],
      filter: "lowprec:needle;len=4096;*",
      settings: { accumulationPromotion: "false", promoteEveryBlocks: "4" },
    });
    assert.equal(report.unexpectedFailures, 0, report.problems.join("\n"));
    // The shared instance, then lowprec's own (promotion forced on).
    assert.deepEqual(seen[0], {
      accumulationPromotion: false,
      promoteEveryBlocks: 4,
      kernelPath: "auto",
    });
    assert.ok(seen.length >= 2);
    assert.deepEqual(seen[1], {
      accumulationPromotion: true,
      promoteEveryBlocks: 4,
      kernelPath: "auto",
    });
  },
});

Deno.test("runConformance() refuses a setting no target of the backend takes", async () => {
  await assert.rejects(
    runConformance(fa3, { settings: { maxChunkKeys: 32 } }),
    /No backend in use takes the setting "maxChunkKeys"/,
  );
});

Deno.test("every result's reproduce command carries the run's --backend-setting flags", async () => {
  const [target] = referenceBackend.targets;
  const def = defineBackend({
    ...referenceBackend,
    name: "tuned",
    targets: [{ ...target, create: () => target.create() }],
    settings: [{
      name: "fast",
      type: "boolean",
      default: true,
      description: "Go fast",
    }],
  });
  const seen: string[] = [];
  await runConformance(def, {
    filter: "contract:deterministic",
    seed: 3,
    settings: { fast: "false" },
    observer: {
      start: ({ reproduce }) => seen.push(reproduce),
      phase() {},
      end() {},
    },
  });
  assert.deepEqual(seen, [
    "deno task conformance --backend tuned --target reference --filter 'contract:deterministic' --seed 3 --backend-setting fast=false",
  ]);
});
