import assert from "node:assert/strict";
import { CACHE_VARIANTS } from "./kernels.ts";
import { runModel } from "./model.ts";
import { CALIBRATION_TEXT, EVAL_TEXT, loadDemoModel } from "./model_support.ts";

Deno.test("runModel() measures KL and top-1 against the bf16 cache: zero for bf16 itself, above zero for fp8", async () => {
  const { model } = await loadDemoModel(
    new URL("../../models/demo-gemma2", import.meta.url).pathname,
  );
  const pick = (label: string) =>
    CACHE_VARIANTS.find((v) => v.label === label)!;
  const report = await runModel(model, {
    text: EVAL_TEXT.slice(0, 60),
    calibrationText: CALIBRATION_TEXT.slice(0, 60),
    variants: [pick("bf16"), { ...pick("fp8_e5m2"), sources: ["dynamic"] }],
    skipSliding: false,
  });
  const [bf16, fp8] = report.rows;
  assert.equal(bf16.variant, "bf16");
  // The same cache as the reference: identical logits.
  assert.equal(bf16.meanKl16, 0);
  assert.equal(bf16.maxKl16, 0);
  assert.equal(bf16.top1Agreement16, 1);
  assert.equal(fp8.variant, "fp8_e5m2");
  assert.ok(fp8.meanKl16 > 0, `fp8 mean KL ${fp8.meanKl16}`);
  assert.ok(fp8.maxKl16 >= fp8.meanKl16);
  assert.ok(fp8.top1Agreement16 > 0 && fp8.top1Agreement16 <= 1);
});
