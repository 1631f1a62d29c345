// The guard against the conformance mutants: the ones that leave out a
// check the core guard owns are marked unguarded in
// tests/mutants/faulty_backend.ts (so the suite still fails them when they
// are reached without the guard); guarded, they pass those cases.
import assert from "node:assert/strict";
import { defineBackend } from "../core/define_backend.ts";
import type { LayerConfig } from "../core/layer.ts";
import { runConformance } from "../conformance/runner.ts";
import { type Fault, faultyBackend } from "./mutants/faulty_backend.ts";

for (
  const [fault, filter] of [
    ["noSupportCheck", "contract:undeclared"],
    ["attendAfterDispose", "contract:dispose"],
    ["ignoresExtraReasons", "contract:extraReasons"],
  ] as [Fault, string][]
) {
  Deno.test(`guard: the ${fault} mutant passes ${filter} once guarded`, async () => {
    const refuseGqa8 = (l: LayerConfig) =>
      l.numQHeads / l.numKvHeads === 8 ? ["GQA ratio 8 is not fused"] : [];
    const faulty = faultyBackend(fault, undefined, refuseGqa8);
    const unguarded = await runConformance(faulty, { seed: 7, filter });
    assert.ok(unguarded.unexpectedFailures > 0, "the mutant fails unguarded");
    // Spreading the target drops the test-only mark: the gate guards it.
    const guarded = defineBackend({
      ...faulty,
      targets: faulty.targets.map((t) => ({ ...t })),
    });
    const report = await runConformance(guarded, { seed: 7, filter });
    assert.equal(report.unexpectedFailures, 0);
  });
}
