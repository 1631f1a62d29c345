/**
 * Contract cases: undeclared combinations are errors (never wrong answers),
 * the same input gives the same output, copyBlocks copies, one plan serves
 * several layers, byte counts are honest, dispose ends an instance.
 *
 * @module
 */

import type { AttentionBackend } from "../core/backend.ts";
import { planBatch } from "../core/batch.ts";
import {
  type BackendCapabilities,
  unsupportedReasons,
} from "../core/capabilities.ts";
import { dtypeInfo, KV_CACHE_DTYPES } from "../core/dtype.ts";
import type { LayerConfig } from "../core/layer.ts";
import type { CaseContext, ConformanceCase } from "./case.ts";
import { ConformanceFailure } from "./case.ts";
import { compareArrays } from "./compare.ts";
import { caseDefaults } from "./defaults.ts";
import { layerForAttend, sequencesFor } from "./attend_cases.ts";
import { runScenario } from "./scenario.ts";
import { toleranceFor } from "./tolerances.ts";
import { DEFAULT_SCALES } from "../core/scales.ts";

async function throwsSomething(fn: () => unknown): Promise<Error | undefined> {
  try {
    await fn();
  } catch (error) {
    return error as Error;
  }
  return undefined;
}

/** The contract cases for one target's capabilities. */
export function contractCases(caps: BackendCapabilities): ConformanceCase[] {
  const d = caseDefaults(caps);
  const base = layerForAttend({
    mode: "mixed",
    len: "37",
    cache: d.kvDtype,
    headDim: d.headDim,
    gqa: "4",
    blockSize: d.blockSize,
    window: "none",
    softCap: "none",
  });
  const probes: [string, LayerConfig][] = [
    ...KV_CACHE_DTYPES.map((
      kvDtype,
    ): [string, LayerConfig] => [`kvDtype=${kvDtype}`, {
      ...base,
      kvDtype,
      ...(kvDtype === "int8" ? { int8Scheme: "per_tensor" } : {}),
    }]),
    ["int8Scheme=per_token_head", {
      ...base,
      kvDtype: "int8",
      int8Scheme: "per_token_head",
    }],
    ["headDim=12", { ...base, headDim: 12 }],
    ["headDim=520", { ...base, headDim: 520 }],
    ["blockSize=3", { ...base, blockSize: 3 }],
    ["kind=sliding_window", {
      ...base,
      kind: "sliding_window",
      slidingWindow: 8,
    }],
    ["softCap=30", { ...base, softCap: 30 }],
  ];
  const cases: ConformanceCase[] = probes.map(([what, layer]) => {
    const reasons = unsupportedReasons(caps, layer);
    return {
      address: `contract:undeclared;${what}`,
      ...(reasons.length === 0
        ? {
          skip: `${what} is declared, so it is not an undeclared combination`,
        }
        : {}),
      run: async (ctx: CaseContext) => {
        const error = await throwsSomething(() =>
          ctx.backend.createCache(layer, {
            numBlocks: 2,
            scales: DEFAULT_SCALES,
          })
        );
        if (!error) {
          throw new ConformanceFailure(
            `createCache accepted ${what}, which the capabilities do not declare (${
              reasons.join("; ")
            }): call assertSupported() in createCache`,
          );
        }
      },
    };
  });

  for (const mode of ["decode", "prefill", "mixed"] as const) {
    const declared = mode === "decode"
      ? caps.decode
      : mode === "prefill"
      ? caps.prefill
      : caps.mixedBatches;
    cases.push({
      address: `contract:undeclared;mode=${mode}`,
      ...(declared ? { skip: `${mode} batches are declared` } : {}),
      run: async (ctx) => {
        const layer = base;
        const seqs = sequencesFor(mode, 5);
        const cache = await ctx.backend.createCache(layer, {
          numBlocks: 8,
          scales: DEFAULT_SCALES,
        });
        const starts = [0];
        for (const s of seqs) starts.push(starts.at(-1)! + s.qLen);
        const plan = planBatch({
          queryStartLoc: Int32Array.from(starts),
          seqLens: Int32Array.from(seqs, (s) => s.seqLen),
          blockTables: Int32Array.from(seqs, (_, i) => i),
          maxBlocksPerSeq: 1,
          blockSize: layer.blockSize,
        });
        const n = plan.numTokens * layer.numQHeads * layer.headDim;
        const error = await throwsSomething(() =>
          ctx.backend.attend(
            cache,
            ctx.backend.plan ? ctx.backend.plan(plan) : plan,
            {
              query: new Float32Array(n),
              out: new Float32Array(n),
            },
          )
        );
        if (!error) {
          throw new ConformanceFailure(
            `attend ran a ${mode} batch, which the capabilities do not declare: call assertBatchSupported() in attend`,
          );
        }
      },
    });
  }

  cases.push({
    address: "contract:deterministic",
    run: async (ctx) => {
      const run = await runScenario(
        ctx.backend,
        base,
        sequencesFor("mixed", 37),
        ctx.rand,
      );
      const again = await run.attendAgain();
      const c = compareArrays(again, run.out, { atol: 0, rtol: 0 });
      if (!c.ok) {
        throw new ConformanceFailure(
          `two attend calls on the same input differ at ${c.mismatches} elements:\n${c.table}`,
        );
      }
    },
  });

  cases.push({
    address: "contract:planReused;layers=2",
    run: async (ctx) => {
      // Two layers, one plan: FlashInfer's plan-once/run-per-layer promise.
      const seqs = sequencesFor("mixed", 37);
      const first = await runScenario(ctx.backend, base, seqs, ctx.rand);
      const second = await runScenario(
        ctx.backend,
        { ...base, index: 1 },
        seqs,
        ctx.rand,
      );
      for (const run of [first, second]) {
        const c = compareArrays(
          run.out,
          run.refDequantized,
          toleranceFor(base.kvDtype).kernel,
        );
        if (!c.ok) {
          throw new ConformanceFailure(
            `layer output differs from the oracle:\n${c.table}`,
          );
        }
      }
    },
  });

  cases.push({
    address: "contract:copyBlocks",
    run: (ctx) => copyBlocksCase(ctx, base),
  });

  for (const kvDtype of caps.kvDtypes) {
    const layer = {
      ...base,
      kvDtype,
      ...(kvDtype === "int8" ? { int8Scheme: caps.int8Schemes[0] } : {}),
    };
    cases.push({
      address: `contract:bytesPerBlock;kvDtype=${kvDtype}`,
      ...(unsupportedReasons(caps, layer).length > 0
        ? { skip: unsupportedReasons(caps, layer).join("; ") }
        : {}),
      run: (ctx) => {
        const bytes = ctx.backend.cacheBytesPerBlock(layer);
        const min = 2 * layer.blockSize * layer.numKvHeads * layer.headDim *
          dtypeInfo(kvDtype).bytes;
        if (!Number.isInteger(bytes) || bytes < min) {
          throw new ConformanceFailure(
            `cacheBytesPerBlock is ${bytes}, but K and V codes alone take ${min} bytes per block: the pool would be sized too large`,
          );
        }
        return Promise.resolve({ bytes });
      },
    });
  }

  cases.push({
    address: "contract:dispose",
    run: async (ctx) => {
      const fresh: AttentionBackend = await ctx.createBackend();
      const cache = await fresh.createCache(base, {
        numBlocks: 2,
        scales: DEFAULT_SCALES,
      });
      await fresh.dispose();
      const row = base.numKvHeads * base.headDim;
      const error = await throwsSomething(() =>
        fresh.write(cache, {
          keys: new Float32Array(row),
          values: new Float32Array(row),
          slotMapping: Int32Array.of(0),
        })
      );
      if (!error) {
        throw new ConformanceFailure(
          "write() still works after dispose(): a disposed backend must refuse calls, not touch released memory",
        );
      }
    },
  });
  return cases;
}

async function copyBlocksCase(ctx: CaseContext, layer: LayerConfig) {
  const { backend } = ctx;
  // Fill block 0 by running a scenario that owns it, copy block 0's contents
  // to every other block, then the same sequences over the copies must
  // give the same output.
  const seqs = [{ qLen: 1, seqLen: layer.blockSize }];
  const run = await runScenario(backend, layer, seqs, ctx.rand, {
    numBlocks: 3,
  });
  const src = Math.floor(run.slots[0][0] / layer.blockSize);
  const dst = (src + 1) % 3;
  await backend.copyBlocks(run.cache, Int32Array.of(src, dst));
  const plan = planBatch({
    queryStartLoc: Int32Array.of(0, 1),
    seqLens: Int32Array.of(layer.blockSize),
    blockTables: Int32Array.of(dst),
    maxBlocksPerSeq: 1,
    blockSize: layer.blockSize,
  });
  const out = new Float32Array(run.out.length).fill(NaN);
  await backend.attend(run.cache, backend.plan ? backend.plan(plan) : plan, {
    query: run.query,
    out,
  });
  const c = compareArrays(out, run.out, { atol: 0, rtol: 0 });
  if (!c.ok) {
    throw new ConformanceFailure(
      `attention over block ${dst} after copyBlocks([${src}, ${dst}]) differs from attention over block ${src}:\n${c.table}`,
    );
  }
}
