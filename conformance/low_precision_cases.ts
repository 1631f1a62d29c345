/**
 * Cases for backends that compute attention in 8 bits: long-context
 * retrieval stays accurate with accumulation promotion on (the setting
 * `accumulationPromotion`, true by default for such backends).
 *
 * @module
 */

import { type CaseTarget, reasonsFor } from "./reasons.ts";
import type { ConformanceCase } from "./case.ts";
import { ConformanceFailure } from "./case.ts";
import { compareArrays } from "./compare.ts";
import { caseDefaults } from "./defaults.ts";
import { layerForAttend } from "./attend_cases.ts";
import { runScenario } from "./scenario.ts";
import { LOW_PRECISION_KERNEL } from "./tolerances.ts";

/** The low-precision cases for one target's capabilities. */
export function lowPrecisionCases(target: CaseTarget): ConformanceCase[] {
  const caps = target.capabilities;
  const d = caseDefaults(caps);
  return ([["4096", false], ["32768", true]] as const).map(([len, long]) => {
    const layer = layerForAttend({
      mode: "decode",
      len: "37",
      cache: caps.kvDtypes.includes("fp8_e4m3") ? "fp8_e4m3" : d.kvDtype,
      headDim: d.headDim,
      gqa: "4",
      blockSize: d.blockSize,
      window: "none",
      softCap: "none",
    });
    const skip = !caps.lowPrecisionCompute
      ? "lowPrecisionCompute is not declared"
      : reasonsFor(target, layer).join("; ") || undefined;
    return {
      address:
        `lowprec:needle;len=${len};promotion=on;kvDtype=${layer.kvDtype}`,
      ...(long ? { long } : {}),
      ...(skip ? { skip } : {}),
      run: async (ctx) => {
        const backend = await ctx.createBackend({
          settings: { accumulationPromotion: true },
        });
        try {
          const L = Number(len);
          const run = await runScenario(
            backend,
            layer,
            [{ qLen: 1, seqLen: L }],
            ctx.rand,
            { needle: true },
          );
          const c = compareArrays(
            run.out,
            run.refDequantized,
            LOW_PRECISION_KERNEL,
          );
          if (!c.ok) {
            throw new ConformanceFailure(
              `with accumulation promotion on, a ${L}-token retrieval differs from the oracle at ${c.mismatches} elements (max |diff| ${
                c.maxAbsError.toPrecision(3)
              }):\n${c.table}`,
            );
          }
          return { maxAbsError: c.maxAbsError };
        } finally {
          await backend.dispose();
        }
      },
    };
  });
}
