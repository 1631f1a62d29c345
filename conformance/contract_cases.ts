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
import { CACHE_KINDS, cacheKindInfo } from "./cache_kinds.ts";
import { caseDefaults } from "./defaults.ts";
import { layerForAttend, sequencesFor } from "./attend_cases.ts";
import { runScenario } from "./scenario.ts";
import { LOW_PRECISION_KERNEL, toleranceFor } from "./tolerances.ts";
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
  // Contract cases use a batch mode the backend declares.
  const mode = caps.mixedBatches ? "mixed" : caps.decode ? "decode" : "prefill";
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

  for (const undeclared of ["decode", "prefill", "mixed"] as const) {
    const declared = undeclared === "decode"
      ? caps.decode
      : undeclared === "prefill"
      ? caps.prefill
      : caps.mixedBatches;
    cases.push({
      address: `contract:undeclared;mode=${undeclared}`,
      ...(declared ? { skip: `${undeclared} batches are declared` } : {}),
      run: async (ctx) => {
        const layer = base;
        const seqs = sequencesFor(undeclared, 5);
        const width = Math.max(
          ...seqs.map((q) => Math.ceil(q.seqLen / layer.blockSize)),
        );
        const cache = await ctx.backend.createCache(layer, {
          numBlocks: seqs.length * width,
          scales: DEFAULT_SCALES,
        });
        const starts = [0];
        for (const q of seqs) starts.push(starts.at(-1)! + q.qLen);
        const plan = planBatch({
          queryStartLoc: Int32Array.from(starts),
          seqLens: Int32Array.from(seqs, (q) => q.seqLen),
          blockTables: Int32Array.from(
            { length: seqs.length * width },
            (_, i) => i,
          ),
          maxBlocksPerSeq: width,
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
            `attend ran a ${undeclared} batch, which the capabilities do not declare: call assertBatchSupported() in attend`,
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
        sequencesFor(mode, 37),
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

  // A second layer unlike the first where the backend allows it (sliding
  // window, an 8-bit cache), so per-layer state cannot hide in the plan.
  const second = [
    {
      ...base,
      index: 1,
      kind: "sliding_window",
      slidingWindow: 8,
      kvDtype: "fp8_e4m3",
    },
    { ...base, index: 1, kind: "sliding_window", slidingWindow: 8 },
    { ...base, index: 1 },
  ].find((l) =>
    unsupportedReasons(caps, l as LayerConfig).length === 0
  ) as LayerConfig;
  cases.push({
    address: "contract:planReused;layers=2",
    run: async (ctx) => {
      // One plan object, two layers: FlashInfer's plan-once/run-per-layer promise.
      const seqs = sequencesFor(mode, 37);
      const first = await runScenario(ctx.backend, base, seqs, ctx.rand);
      const next = await runScenario(ctx.backend, second, seqs, ctx.rand, {
        reuse: first,
      });
      const again = new Float32Array(first.out.length).fill(NaN);
      await ctx.backend.attend(first.cache, first.backendPlan, {
        query: first.query,
        out: again,
      });
      for (
        const [name, out, ref, kv] of [
          [
            `layer 0 (${base.kind}, ${base.kvDtype})`,
            first.out,
            first.refDequantized,
            base.kvDtype,
          ],
          [
            `layer 1 (${second.kind}, ${second.kvDtype})`,
            next.out,
            next.refDequantized,
            second.kvDtype,
          ],
          [
            "layer 0 after layer 1 used the plan",
            again,
            first.refDequantized,
            base.kvDtype,
          ],
        ] as const
      ) {
        // 8-bit compute quantizes Q and P too: the attend cases' bound.
        const tol = caps.lowPrecisionCompute
          ? LOW_PRECISION_KERNEL
          : toleranceFor(kv).kernel;
        const c = compareArrays(out, ref, tol);
        if (!c.ok) {
          throw new ConformanceFailure(
            `with one plan shared by two layers, ${name} differs from the oracle:\n${c.table}`,
          );
        }
      }
    },
  });

  for (const kind of CACHE_KINDS) {
    const info = cacheKindInfo(kind);
    const layer: LayerConfig = {
      ...base,
      kvDtype: info.dtype,
      ...(info.int8Scheme ? { int8Scheme: info.int8Scheme } : {}),
    };
    const reasons = unsupportedReasons(caps, layer);
    cases.push({
      address: `contract:copyBlocks;cache=${kind}`,
      ...(reasons.length > 0 ? { skip: reasons.join("; ") } : {}),
      run: (ctx) => copyBlocksCase(ctx, layer, info.zeroPoint, caps.decode),
    });
  }

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

async function copyBlocksCase(
  ctx: CaseContext,
  layer: LayerConfig,
  zeroPoint: boolean,
  decodeDeclared: boolean,
) {
  const { backend } = ctx;
  // A one-block sequence; copy its block to another (poisoned) block, and
  // the same queries over the copy must give bit-identical output. Scales
  // stored beside the codes (int8 per token and head) must travel too.
  const qLen = decodeDeclared ? 1 : layer.blockSize;
  const seqs = [{ qLen, seqLen: layer.blockSize }];
  const run = await runScenario(backend, layer, seqs, ctx.rand, {
    numBlocks: 3,
    zeroPoint,
  });
  const src = Math.floor(run.slots[0][0] / layer.blockSize);
  const dst = (src + 1) % 3;
  await backend.copyBlocks(run.cache, Int32Array.of(src, dst));
  const plan = planBatch({
    queryStartLoc: Int32Array.of(0, qLen),
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
