/**
 * Incremental cases: the cache changes between attend calls, as in serving.
 * `decodeSteps` writes one token per sequence (two where only prefill is
 * declared), attends, and repeats, filling a partly full last block and
 * crossing into the next, checked against the fp64 oracle at every step.
 * `blockReuse` frees one sequence's blocks and gives them, in another order,
 * to a new sequence that overwrites them: the old sequence's data must not
 * show. Both catch a backend that caches dequantized blocks or keeps state
 * derived from its first call.
 *
 * @module
 */

import type { LayerCache } from "../core/backend.ts";
import type { PlanningBackend } from "../core/plan_fallback.ts";
import { planBatch } from "../core/batch.ts";
import type { LayerConfig } from "../core/layer.ts";
import { referenceAttention } from "../core/reference_attention.ts";
import { estimateScales, type LayerKvScales } from "../core/scales.ts";
import type { CaseContext, CaseMetrics, ConformanceCase } from "./case.ts";
import { ConformanceFailure } from "./case.ts";
import { CACHE_KINDS, type CacheKind, cacheKindInfo } from "./cache_kinds.ts";
import { compareArrays } from "./compare.ts";
import { caseDefaults } from "./defaults.ts";
import { layerForAttend } from "./attend_cases.ts";
import { type CaseTarget, reasonsFor } from "./reasons.ts";
import { expectedDequantized, poisonValue, shuffle } from "./scenario.ts";
import { kernelBound, quantizedBound } from "./tolerances.ts";

/** Attend calls in a decodeSteps case. */
const STEPS = 6;

/** The incremental cases for one target. */
export function incrementalCases(target: CaseTarget): ConformanceCase[] {
  const caps = target.capabilities;
  const d = caseDefaults(caps);
  const modeSkip = !caps.decode && !caps.prefill
    ? "neither decode nor prefill is declared"
    : undefined;
  const cases: ConformanceCase[] = [];
  for (const scenario of ["decodeSteps", "blockReuse"] as const) {
    for (const kind of CACHE_KINDS) {
      const layer = layerForAttend({
        mode: "decode",
        len: "37",
        cache: kind,
        headDim: d.headDim,
        gqa: "4",
        blockSize: d.blockSize,
        window: "none",
        softCap: "none",
      });
      const skip = [
        ...reasonsFor(target, layer),
        ...(modeSkip ? [modeSkip] : []),
      ]
        .join("; ");
      cases.push({
        address: `incremental:${scenario};cache=${kind}`,
        ...(skip ? { skip } : {}),
        run: (ctx) =>
          (scenario === "decodeSteps" ? decodeSteps : blockReuse)(
            ctx,
            layer,
            kind,
          ),
      });
    }
  }
  return cases;
}

/** One sequence's data (all it will ever hold) and its block table. */
interface Seq {
  readonly keys: Float32Array;
  readonly values: Float32Array;
  readonly blocks: readonly number[];
  /** Tokens written so far. */
  len: number;
}

/** A cache, its layer and scales, and the checks every step shares. */
class Incremental {
  readonly row: number;
  readonly qRow: number;
  constructor(
    readonly ctx: CaseContext,
    readonly layer: LayerConfig,
    readonly kind: CacheKind,
    readonly cache: LayerCache,
    readonly scales: LayerKvScales,
    readonly numBlocks: number,
  ) {
    this.row = layer.numKvHeads * layer.headDim;
    this.qRow = layer.numQHeads * layer.headDim;
  }

  /** A cache for these sequences, with scales calibrated on all their data. */
  static async create(
    ctx: CaseContext,
    layer: LayerConfig,
    kind: CacheKind,
    seqs: readonly Seq[],
    numBlocks: number,
  ): Promise<Incremental> {
    const zeroPoint = cacheKindInfo(kind).zeroPoint;
    const scales = estimateScales(
      concat(seqs.map((s) => s.keys)),
      concat(seqs.map((s) => s.values)),
      layer.kvDtype,
      { zeroPoint },
    );
    const cache = await ctx.backend.createCache(layer, { numBlocks, scales });
    const run = new Incremental(ctx, layer, kind, cache, scales, numBlocks);
    // Every slot starts poisoned: a read of a slot not yet written shows.
    const slots = numBlocks * layer.blockSize;
    const p = new Float32Array(slots * run.row).fill(poisonValue(layer));
    await ctx.backend.write(cache, {
      keys: p,
      values: p,
      slotMapping: Int32Array.from({ length: slots }, (_, i) => i),
    });
    return run;
  }

  get backend(): PlanningBackend {
    return this.ctx.backend;
  }

  slotOf(s: Seq, j: number): number {
    const bs = this.layer.blockSize;
    return s.blocks[Math.floor(j / bs)] * bs + (j % bs);
  }

  /** Writes positions s.len .. s.len + n - 1 of each sequence in one call. */
  async append(seqs: readonly Seq[], n: readonly number[]): Promise<void> {
    const total = n.reduce((a, b) => a + b, 0);
    const keys = new Float32Array(total * this.row);
    const values = new Float32Array(total * this.row);
    const slotMapping = new Int32Array(total);
    let t = 0;
    seqs.forEach((s, i) => {
      for (let j = s.len; j < s.len + n[i]; j++, t++) {
        keys.set(
          s.keys.subarray(j * this.row, (j + 1) * this.row),
          t * this.row,
        );
        values.set(
          s.values.subarray(j * this.row, (j + 1) * this.row),
          t * this.row,
        );
        slotMapping[t] = this.slotOf(s, j);
      }
      s.len += n[i];
    });
    await this.backend.write(this.cache, { keys, values, slotMapping });
  }

  /**
   * Attends the last `qLen` tokens of each sequence (a fresh plan, tables
   * padded with -1 to `width`) and checks the output against the oracle.
   */
  async attendAndCheck(
    seqs: readonly Seq[],
    qLen: number,
    width: number,
    what: string,
  ): Promise<number> {
    const { layer, backend } = this;
    const tables = new Int32Array(seqs.length * width).fill(-1);
    seqs.forEach((s, i) =>
      tables.set(
        s.blocks.slice(0, Math.ceil(s.len / layer.blockSize)),
        i * width,
      )
    );
    const core = planBatch({
      queryStartLoc: Int32Array.from(
        { length: seqs.length + 1 },
        (_, i) => i * qLen,
      ),
      seqLens: Int32Array.from(seqs, (s) => s.len),
      blockTables: tables,
      maxBlocksPerSeq: width,
      blockSize: layer.blockSize,
    });
    const query = new Float32Array(seqs.length * qLen * this.qRow);
    for (let i = 0; i < query.length; i++) query[i] = 6 * this.ctx.rand() - 3;
    const out = new Float32Array(query.length).fill(NaN);
    await backend.attend(this.cache, backend.plan(core), {
      query,
      out,
    });
    const prefix = (s: Seq, a: Float32Array) => a.subarray(0, s.len * this.row);
    const deq = await Promise.all(seqs.map(async (s) => {
      if (backend.readCache) {
        const slots = Int32Array.from(
          { length: s.len },
          (_, j) => this.slotOf(s, j),
        );
        return await backend.readCache(this.cache, slots);
      }
      const { kScale, vScale, kZeroPoint, vZeroPoint } = this.scales;
      return {
        keys: expectedDequantized(layer, prefix(s, s.keys), kScale, kZeroPoint),
        values: expectedDequantized(
          layer,
          prefix(s, s.values),
          vScale,
          vZeroPoint,
        ),
      };
    }));
    const oracle = (k: Float32Array[], v: Float32Array[]) =>
      referenceAttention(layer, { batch: core, query, keys: k, values: v })
        .out;
    const describe = (i: number) => {
      const t = Math.floor(i / this.qRow);
      const s = core.tokenSeq[t];
      return `sequence ${s} position ${core.tokenPos[t]} (block ${
        seqs[s].blocks[Math.floor(core.tokenPos[t] / layer.blockSize)]
      }) head ${Math.floor((i % this.qRow) / layer.headDim)} dim ${
        i % layer.headDim
      }:`;
    };
    const caps = this.ctx.target.capabilities;
    const kernelTol = kernelBound(caps, layer.kvDtype);
    const kernel = compareArrays(
      out,
      oracle(deq.map((x) => x.keys), deq.map((x) => x.values)),
      kernelTol,
      describe,
    );
    if (!kernel.ok) {
      throw new ConformanceFailure(
        `${what}: attention differs from the fp64 oracle on the backend's own dequantized cache at ${kernel.mismatches} of ${out.length} elements (max |diff| ${
          kernel.maxAbsError.toPrecision(3)
        }, tolerance atol ${kernelTol.atol} rtol ${kernelTol.rtol}); stale dequantized blocks or state kept from an earlier call show here:\n${kernel.table}`,
      );
    }
    // The readout itself could be stale: also bound the error against the
    // data actually written.
    const bound = quantizedBound(caps, layer.kvDtype);
    const quant = compareArrays(
      out,
      oracle(
        seqs.map((s) => prefix(s, s.keys)),
        seqs.map((s) => prefix(s, s.values)),
      ),
      { atol: bound, rtol: 0 },
      describe,
    );
    if (!quant.ok) {
      throw new ConformanceFailure(
        `${what}: attention differs from the fp64 oracle on the K/V written by more than ${layer.kvDtype}'s quantization bound ${bound} at ${quant.mismatches} elements (max |diff| ${
          quant.maxAbsError.toPrecision(3)
        }):\n${quant.table}`,
      );
    }
    return kernel.maxAbsError;
  }
}

/** A sequence of `n` tokens in these blocks, with data in its cache kind's range. */
function newSeq(
  ctx: CaseContext,
  layer: LayerConfig,
  kind: CacheKind,
  n: number,
  blocks: readonly number[],
): Seq {
  const [lo, hi] = cacheKindInfo(kind).zeroPoint ? [-0.5, 1.5] : [-1, 1];
  const data = () => {
    const a = new Float32Array(n * layer.numKvHeads * layer.headDim);
    for (let i = 0; i < a.length; i++) a[i] = lo + (hi - lo) * ctx.rand();
    return a;
  };
  return { keys: data(), values: data(), blocks, len: 0 };
}

/**
 * Two sequences decode step by step: one starts two tokens short of filling
 * its second block and crosses into a third, the other stays in its first.
 * Each step writes one token per sequence and attends with a fresh plan.
 */
async function decodeSteps(
  ctx: CaseContext,
  layer: LayerConfig,
  kind: CacheKind,
): Promise<CaseMetrics> {
  const bs = layer.blockSize;
  const step = ctx.target.capabilities.decode ? 1 : 2;
  const start = [
    bs + Math.max(1, bs - 2 * step),
    Math.max(step, Math.min(bs, 3)),
  ];
  const final = start.map((n) => n + STEPS * step);
  const blocksOf = final.map((n) => Math.ceil(n / bs));
  const numBlocks = blocksOf[0] + blocksOf[1] + 3;
  const ids = shuffle(ctx.rand, [...Array(numBlocks).keys()]);
  const seqs = [
    newSeq(ctx, layer, kind, final[0], ids.slice(0, blocksOf[0])),
    newSeq(
      ctx,
      layer,
      kind,
      final[1],
      ids.slice(blocksOf[0], blocksOf[0] + blocksOf[1]),
    ),
  ];
  const run = await Incremental.create(ctx, layer, kind, seqs, numBlocks);
  let worst = 0;
  try {
    await run.append(seqs, start.map((n) => n - step));
    for (let k = 1; k <= STEPS; k++) {
      await run.append(seqs, [step, step]);
      worst = Math.max(
        worst,
        await run.attendAndCheck(
          seqs,
          step,
          Math.max(...blocksOf),
          `step ${k} of ${STEPS} (sequence lengths ${
            seqs.map((s) => s.len).join(" and ")
          }, block size ${bs})`,
        ),
      );
    }
  } finally {
    await ctx.backend.disposeCache?.(run.cache);
  }
  return { steps: STEPS, kernelMaxAbsError: worst };
}

/**
 * Sequence A fills two and a half blocks and attends; its blocks are then
 * freed and handed, in reverse order, to sequence B, which writes two
 * blocks and one token (so its last block still holds A's old data past
 * B's end), attends, and decodes three more steps over A's stale slots.
 */
async function blockReuse(
  ctx: CaseContext,
  layer: LayerConfig,
  kind: CacheKind,
): Promise<CaseMetrics> {
  const bs = layer.blockSize;
  const step = ctx.target.capabilities.decode ? 1 : 2;
  const lenA = 2 * bs + Math.max(step, Math.ceil(bs / 2));
  const blocksA = Math.ceil(lenA / bs);
  const numBlocks = blocksA + 2;
  const ids = shuffle(ctx.rand, [...Array(numBlocks).keys()]).slice(0, blocksA);
  const startB = (blocksA - 1) * bs + step;
  const steps = 3;
  const a = newSeq(ctx, layer, kind, lenA, ids);
  const b = newSeq(ctx, layer, kind, startB + steps * step, [...ids].reverse());
  const run = await Incremental.create(ctx, layer, kind, [a, b], numBlocks);
  let worst = 0;
  try {
    await run.append([a], [lenA]);
    worst = await run.attendAndCheck(
      [a],
      step,
      blocksA,
      `sequence A (${lenA} tokens in blocks ${ids.join(", ")})`,
    );
    await run.append([b], [startB]);
    for (let k = 0; k <= steps; k++) {
      if (k > 0) await run.append([b], [step]);
      worst = Math.max(
        worst,
        await run.attendAndCheck(
          [b],
          step,
          blocksA,
          `sequence B (${b.len} tokens) in sequence A's freed blocks, reused in the order ${
            b.blocks.join(", ")
          }${k > 0 ? `, decode step ${k}` : ""}`,
        ),
      );
    }
  } finally {
    await ctx.backend.disposeCache?.(run.cache);
  }
  return { kernelMaxAbsError: worst };
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
}
