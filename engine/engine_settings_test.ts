import assert from "node:assert/strict";
import fa3 from "../backends/fa3/mod.ts";
import type {
  BackendDefinition,
  CreateBackendOptions,
} from "../core/backend.ts";
import { BackendSettingError } from "../core/settings.ts";
import { loadEngine } from "./engine_load.ts";

const MODEL = new URL("../models/demo-gemma2", import.meta.url).pathname;

// fa3 with each target's create() recorded: the settings its (gated)
// create receives are the ones its kernels run with.
function spiedFa3(seen: unknown[]): BackendDefinition {
  return {
    ...fa3,
    targets: fa3.targets.map((t) => ({
      ...t,
      create: (o?: CreateBackendOptions) => {
        seen.push({ target: t.target, settings: o?.settings });
        return t.create(o);
      },
    })),
  };
}

const fa3Here = (await Promise.all(fa3.targets.map((t) => t.probe())))
  .some((a) => a.available);

Deno.test({
  name:
    "loadEngine() with --backend fa3 --backend-setting accumulationPromotion=false creates fa3 with promotion off",
  ignore: !fa3Here,
  fn: async () => {
    const seen: { target: string; settings: Record<string, unknown> }[] = [];
    const engine = await loadEngine(MODEL, {
      backends: [spiedFa3(seen)],
      select: {
        backend: "fa3",
        kvCacheDtype: "fp8_e4m3",
        backendSettings: { accumulationPromotion: "false" },
      },
      calculateKvScales: true,
      ops: "typescript",
    });
    try {
      assert.equal(seen.length, 1);
      assert.equal(seen[0].settings.accumulationPromotion, false);
      assert.equal(seen[0].settings.promoteEveryBlocks, 2); // default filled in
      const text = await engine.generate("A time to", {
        temperature: 0,
        maxTokens: 2,
        ignoreEos: true,
      });
      assert.equal(typeof text, "string");
    } finally {
      await engine.shutdown();
    }
  },
});

Deno.test("loadEngine() refuses a setting no backend in use takes, naming who declares it", async () => {
  await assert.rejects(
    loadEngine(MODEL, {
      backends: [(await import("../backends/reference/mod.ts")).default, fa3],
      select: {
        backend: "reference",
        backendSettings: { accumulationPromotion: "false" },
      },
      ops: "typescript",
    }),
    (e: Error) => {
      assert.ok(e instanceof BackendSettingError);
      assert.match(
        e.message,
        /No backend in use takes the setting "accumulationPromotion": fa3 declares it on native, webgpu; in use: reference\/reference/,
      );
      return true;
    },
  );
});
