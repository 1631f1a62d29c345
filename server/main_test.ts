import assert from "node:assert/strict";
import { CalibrationError } from "../core/scales.ts";
import { DEFAULT_MODEL_DIR } from "./plan_model.ts";
import { startServer } from "./main.ts";
import type { ServeOptions } from "./serve_options.ts";

// Every case fails before the weights load, so none of them binds a port.
const base: ServeOptions = {
  host: "127.0.0.1",
  port: 0,
  kvCacheMemory: 1 << 20,
  maxNumSeqs: 4,
  maxNumBatchedTokens: 64,
  schedulingPolicy: "max_utilization",
  calculateKvScales: false,
  shutdownTimeout: 0,
};
const fp8 = { kvCacheDtype: "fp8_e4m3", target: "reference" } as const;

Deno.test("startServer() names the calibration file and the field that is wrong", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      version: 1,
      layers: [0, 1, 2, 3, 4, 5].map((layer) => ({
        layer,
        k_scale: layer === 3 ? -1 : 0.01,
        v_scale: 0.01,
      })),
    }),
  );
  await assert.rejects(
    startServer(DEFAULT_MODEL_DIR, fp8, { ...base, kvQuantParamsPath: path }),
    (e: Error) =>
      e instanceof CalibrationError &&
      e.message.includes(`"${path}"`) &&
      e.message.includes("layers[3].k_scale must be a positive finite"),
  );
  await Deno.remove(path);
  await assert.rejects(
    startServer(DEFAULT_MODEL_DIR, fp8, {
      ...base,
      kvQuantParamsPath: "no/such/scales.json",
    }),
    /Cannot read calibration file "no\/such\/scales.json"/,
  );
});

Deno.test("startServer() refuses a scale source for a 16-bit cache before reading the file", async () => {
  for (
    const o of [
      { kvQuantParamsPath: "no/such/scales.json" },
      { calculateKvScales: true },
    ]
  ) {
    await assert.rejects(
      startServer(DEFAULT_MODEL_DIR, { kvCacheDtype: "bf16" }, {
        ...base,
        ...o,
      }),
      /no layer's KV cache has per-layer scales \(the plan stores bf16\).*pass --kv-cache-dtype fp8_e4m3/,
    );
  }
});
