/**
 * Contract cases: undeclared combinations are errors (never wrong answers),
 * the same input gives the same output, copyBlocks copies several pairs in
 * order, one plan serves several layers, byte counts leave room for codes
 * and scales, dispose ends an instance (every member refuses).
 *
 * @module
 */

import type { PlanningBackend } from "../core/plan_fallback.ts";
import { planBatch } from "../core/batch.ts";
import { dtypeInfo, KV_CACHE_DTYPES } from "../core/dtype.ts";
import type { LayerConfig } from "../core/layer.ts";
import type { CaseContext, ConformanceCase } from "./case.ts";
import { ConformanceFailure } from "./case.ts";
import { compareArrays } from "./compare.ts";
import { CACHE_KINDS, cacheKindInfo } from "./cache_kinds.ts";
import { BLOCK_SIZES, caseDefaults, HEAD_DIMS } from "./defaults.ts";
import { layerForAttend, sequencesFor } from "./attend_cases.ts";
import { runScenario } from "./scenario.ts";
import { kernelBound } from "./tolerances.ts";
import { DEFAULT_SCALES } from "../core/scales.ts";
import { type CaseTarget, extraReasonsFor, reasonsFor } from "./reasons.ts";

async function throwsSomething(fn: () => unknown): Promise<Error | undefined> {
  try {
    await fn();
  } catch (error) {
    return error as Error;
  }
  return undefined;
}

/** The contract cases for one target (its capabilities and extra reasons). */
export function contractCases(target: CaseTarget): ConformanceCase[] {
  const caps = target.capabilities;
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
  // Cases built on the base layer skip when the target refuses it.
  const baseReasons = reasonsFor(target, base);
  const baseSkip = baseReasons.length > 0
    ? { skip: baseReasons.join("; ") }
    : {};
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
    const reasons = reasonsFor(target, layer);
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

  cases.push(extraReasonsCase(target, base));

  for (const undeclared of ["decode", "prefill", "mixed"] as const) {
    const declared = undeclared === "decode"
      ? caps.decode
      : undeclared === "prefill"
      ? caps.prefill
      : caps.mixedBatches;
    cases.push({
      address: `contract:undeclared;mode=${undeclared}`,
      ...(declared ? { skip: `${undeclared} batches are declared` } : baseSkip),
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
            ctx.backend.plan(plan),
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
    ...baseSkip,
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
    reasonsFor(target, l as LayerConfig).length === 0
  ) as LayerConfig;
  cases.push({
    address: "contract:planReused;layers=2",
    ...baseSkip,
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
        // 8-bit compute rounds Q and P too: the same bound as attend's.
        const tol = kernelBound(caps, kv);
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
    const reasons = reasonsFor(target, layer);
    cases.push({
      address: `contract:copyBlocks;cache=${kind}`,
      ...(reasons.length > 0 ? { skip: reasons.join("; ") } : {}),
      run: (ctx) => copyBlocksCase(ctx, layer, info.zeroPoint, caps.decode),
    });
  }

  // int8 with a zero point has the same layout as int8 per tensor.
  for (const kind of CACHE_KINDS.filter((k) => k !== "int8_zp")) {
    const info = cacheKindInfo(kind);
    const layer: LayerConfig = {
      ...base,
      kvDtype: info.dtype,
      ...(info.int8Scheme ? { int8Scheme: info.int8Scheme } : {}),
    };
    const reasons = reasonsFor(target, layer);
    cases.push({
      address: `contract:bytesPerBlock;cache=${kind}`,
      ...(reasons.length > 0 ? { skip: reasons.join("; ") } : {}),
      run: (ctx) => {
        const bytes = ctx.backend.cacheBytesPerBlock(layer);
        const need = minBytesPerBlock(layer);
        if (!Number.isInteger(bytes) || bytes < need.total) {
          throw new ConformanceFailure(
            `cacheBytesPerBlock is ${bytes} for ${kind} (block size ${layer.blockSize}, ${layer.numKvHeads} kv heads, head dim ${layer.headDim}), but a block needs at least ${need.total} bytes: ${need.explain}; the pool would be sized with more blocks than memory holds`,
          );
        }
        return Promise.resolve({ bytes, minBytes: need.total });
      },
    });
  }

  cases.push({
    address: "contract:dispose",
    ...baseSkip,
    run: (ctx) => disposeCase(ctx, base, caps.decode),
  });
  return cases;
}

/**
 * Layers the target declares but its own extraReasons() refuses must be
 * refused by createCache too (assertSupported(name, caps, layer,
 * extraReasons(layer))), never served: the probes vary one field of the
 * base layer at a time over what the suite uses (GQA ratios, cache kinds,
 * head dims, block sizes, window, soft-cap).
 */
function extraReasonsCase(
  target: CaseTarget,
  base: LayerConfig,
): ConformanceCase {
  const address = "contract:extraReasons";
  if (!target.extraReasons) {
    return {
      address,
      skip: "the target declares no extraReasons()",
      run: () => Promise.resolve(),
    };
  }
  const probes: LayerConfig[] = [
    ...([[4, 4], [8, 2], [16, 2], [8, 1]] as const).map(([q, kv]) => ({
      ...base,
      numQHeads: q,
      numKvHeads: kv,
    })),
    ...CACHE_KINDS.map((kind) => {
      const info = cacheKindInfo(kind);
      const { int8Scheme: _, ...rest } = base;
      return {
        ...rest,
        kvDtype: info.dtype,
        ...(info.int8Scheme ? { int8Scheme: info.int8Scheme } : {}),
      };
    }),
    ...HEAD_DIMS.map((headDim) => ({
      ...base,
      headDim,
      scale: headDim ** -0.5,
    })),
    ...BLOCK_SIZES.map((blockSize) => ({ ...base, blockSize })),
    { ...base, kind: "sliding_window", slidingWindow: 8 },
    { ...base, softCap: 30 },
  ];
  const refused = probes.filter((l) =>
    reasonsFor({ capabilities: target.capabilities }, l).length === 0 &&
    extraReasonsFor(target, l).length > 0
  );
  if (refused.length === 0) {
    return {
      address,
      skip: "extraReasons() refuses none of the declared probe layers",
      run: () => Promise.resolve(),
    };
  }
  return {
    address,
    run: async (ctx) => {
      const accepted: string[] = [];
      for (const layer of refused) {
        const error = await throwsSomething(() =>
          ctx.backend.createCache(layer, {
            numBlocks: 2,
            scales: DEFAULT_SCALES,
          })
        );
        if (!error) {
          accepted.push(
            `${layer.numQHeads}/${layer.numKvHeads} heads, ${layer.kvDtype}${
              layer.int8Scheme ? ` ${layer.int8Scheme}` : ""
            }, head dim ${layer.headDim}, block size ${layer.blockSize} (${
              extraReasonsFor(target, layer).join("; ")
            })`,
          );
        }
      }
      if (accepted.length > 0) {
        throw new ConformanceFailure(
          `createCache accepted ${accepted.length} layer(s) that the target's own extraReasons() refuses: ${
            accepted.join(", ")
          }; pass them to assertSupported(name, capabilities, layer, extraReasons(layer)) in createCache`,
        );
      }
      return { probes: refused.length };
    },
  };
}

/**
 * The least a block can take: K and V codes, plus, for int8 per token and
 * head, one fp32 scale per (token, kv head) for K and for V. The scale is an
 * fp32 value (amax / 127) that dequantization multiplies by, so fewer bits
 * would change the dequantized values; per-tensor scales are per layer and
 * take no room in a block.
 */
function minBytesPerBlock(layer: LayerConfig): {
  total: number;
  explain: string;
} {
  const codes = 2 * layer.blockSize * layer.numKvHeads * layer.headDim *
    dtypeInfo(layer.kvDtype).bytes;
  if (layer.kvDtype !== "int8" || layer.int8Scheme !== "per_token_head") {
    return { total: codes, explain: `K and V codes take ${codes} bytes` };
  }
  const scales = 2 * layer.blockSize * layer.numKvHeads * 4;
  return {
    total: codes + scales,
    explain:
      `K and V codes take ${codes} bytes and their per-token-head scales ${scales} (one 4-byte fp32 scale per token and kv head, for K and for V)`,
  };
}

/** A member called after dispose() that did not throw. */
async function stillWorks(fn: () => unknown): Promise<boolean> {
  return (await throwsSomething(fn)) === undefined;
}

/**
 * Every member must work on a fresh instance, then refuse after dispose():
 * a disposed backend must not touch released memory. Exempt:
 * cacheBytesPerBlock() (arithmetic on the layer, touches no memory),
 * disposeCache() (releasing what dispose() released may be a no-op) and a
 * second dispose().
 */
async function disposeCase(
  ctx: CaseContext,
  layer: LayerConfig,
  decodeDeclared: boolean,
) {
  const fresh: PlanningBackend = await ctx.createBackend();
  const row = layer.numKvHeads * layer.headDim;
  // A one-sequence batch of the kind the backend declares (decode: one
  // token; prefill only: two).
  const n = decodeDeclared ? 1 : 2;
  const scales = DEFAULT_SCALES;
  const cache = await fresh.createCache(layer, { numBlocks: 2, scales });
  const input = {
    keys: new Float32Array(n * row).fill(0.5),
    values: new Float32Array(n * row).fill(0.25),
    slotMapping: Int32Array.from({ length: n }, (_, i) => i),
  };
  const core = planBatch({
    queryStartLoc: Int32Array.of(0, n),
    seqLens: Int32Array.of(n),
    blockTables: Int32Array.of(0),
    maxBlocksPerSeq: 1,
    blockSize: layer.blockSize,
  });
  const qn = n * layer.numQHeads * layer.headDim;
  const io = () => ({
    query: new Float32Array(qn).fill(0.1),
    out: new Float32Array(qn),
  });
  // The same calls succeed before dispose(), so a refusal afterwards is not
  // an argument error.
  await fresh.write(cache, input);
  const plan = fresh.plan(core);
  await fresh.attend(cache, plan, io());
  await fresh.copyBlocks(cache, Int32Array.of(0, 1));
  if (fresh.readCache) await fresh.readCache(cache, Int32Array.of(0));
  await fresh.dispose();
  const calls: [string, () => unknown][] = [
    ["createCache()", () => fresh.createCache(layer, { numBlocks: 2, scales })],
    ["write()", () => fresh.write(cache, input)],
    // The core's identity plan has nothing to dispose: only a backend's own
    // plan (one that made a new object) must refuse after dispose().
    ...(plan !== core
      ? [["plan()", () => fresh.plan(core)] as [string, () => unknown]]
      : []),
    ["attend()", () => fresh.attend(cache, plan, io())],
    ["copyBlocks()", () => fresh.copyBlocks(cache, Int32Array.of(0, 1))],
    ...(fresh.readCache
      ? [[
        "readCache()",
        () => fresh.readCache!(cache, Int32Array.of(0)),
      ] as [string, () => unknown]]
      : []),
  ];
  const working: string[] = [];
  for (const [name, call] of calls) {
    if (await stillWorks(call)) working.push(name);
  }
  if (working.length > 0) {
    throw new ConformanceFailure(
      `${
        working.join(", ")
      } still worked after dispose(): a disposed backend must refuse every call (throw), not touch released memory; only cacheBytesPerBlock(), disposeCache() and a second dispose() may still return`,
    );
  }
}

/**
 * copyBlocks with several pairs, two of them chains, in one call. Pairs are
 * applied in order, as if each copy finished before the next began, so
 * [a,f, f,g] leaves a's data in g. Attention over each destination must
 * then be bit-identical to attention, before the copy, over the block whose
 * data it should hold (same queries, same batch shape).
 */
async function copyBlocksCase(
  ctx: CaseContext,
  layer: LayerConfig,
  zeroPoint: boolean,
  decodeDeclared: boolean,
) {
  const { backend } = ctx;
  const qLen = decodeDeclared ? 1 : layer.blockSize;
  const bs = layer.blockSize;
  // Five one-block sequences with distinct data in blocks a..e; the two
  // other blocks (f, g) are poisoned.
  const seqs = Array.from({ length: 5 }, () => ({ qLen, seqLen: bs }));
  const run = await runScenario(backend, layer, seqs, ctx.rand, {
    numBlocks: 7,
    zeroPoint,
  });
  const [a, b, c, d, e] = run.blockIds;
  const [f, g] = [...Array(7).keys()].filter((x) => !run.blockIds.includes(x));
  const pairs = [a, f, f, g, d, b, b, c];
  // After the copies (in order): f and g hold a's data, b and c hold d's.
  const holds: [number, number, number][] = [
    // [block read after, block read before, sequence whose queries]
    [f, a, 0],
    [g, a, 0],
    [b, d, 3],
    [c, d, 3],
    [a, a, 0],
    [d, d, 3],
    [e, e, 4],
  ];
  const qRows = qLen * layer.numQHeads * layer.headDim;
  const query = new Float32Array(holds.length * qRows);
  holds.forEach(([, , s], i) =>
    query.set(run.query.subarray(s * qRows, (s + 1) * qRows), i * qRows)
  );
  const attendOver = async (tables: number[]) => {
    const core = planBatch({
      queryStartLoc: Int32Array.from(
        { length: tables.length + 1 },
        (_, i) => i * qLen,
      ),
      seqLens: new Int32Array(tables.length).fill(bs),
      blockTables: Int32Array.from(tables),
      maxBlocksPerSeq: 1,
      blockSize: bs,
    });
    const out = new Float32Array(query.length).fill(NaN);
    await backend.attend(
      run.cache,
      backend.plan(core),
      { query, out },
    );
    return out;
  };
  const before = await attendOver(holds.map(([, src]) => src));
  await backend.copyBlocks(run.cache, Int32Array.from(pairs));
  const after = await attendOver(holds.map(([dst]) => dst));
  for (let i = 0; i < holds.length; i++) {
    const [dst, src] = holds[i];
    const part = (x: Float32Array) => x.subarray(i * qRows, (i + 1) * qRows);
    const cmp = compareArrays(part(after), part(before), { atol: 0, rtol: 0 });
    if (!cmp.ok) {
      throw new ConformanceFailure(
        `after copyBlocks([${
          pairs.join(", ")
        }]) (pairs apply in order: ${a}->${f}, then ${f}->${g}, ${d}->${b}, then ${b}->${c}), attention over block ${dst} differs from attention before the copy over block ${src}, whose data it must hold${
          dst === src ? " (a source must stay unchanged)" : ""
        }:\n${cmp.table}`,
      );
    }
  }
  await backend.disposeCache?.(run.cache);
}
