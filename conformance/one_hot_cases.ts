/**
 * One-hot attention cases (`onehot:`): the crafted 8-bit inputs of the
 * write cases, checked through the kernel's own read path instead of
 * readCache, so that backends without readCache get them too.
 *
 * - V: a one-key sequence with a zero key. Softmax over one key is exactly
 *   1, so every query head's output is its kv head's stored V row.
 * - K: a two-key sequence. Key 0 is zero with V = w0 e_0; key 1 is the key
 *   under test with V = w1 e_1. A query head one-hot on dim d with magnitude
 *   alpha gives logits 0 and alpha * s * k[d] (s: the softmax scale), so
 *   k[d] = ln((out[1] / w1) / (out[0] / w0)) / (alpha * s). alpha is chosen
 *   from the expected key so the logit gap is ONE_HOT.logitGap.
 *
 * A value passes when it lies within ONE_HOT.fractionOfGap of the gap to its
 * neighbouring code values (so it names its code), NaN where the code is
 * NaN, the same infinity where the code is infinite (V only). See
 * tolerances.ts for the derivation and what this cannot see.
 *
 * @module
 */

import type { PlanningBackend } from "../core/plan_fallback.ts";
import { planBatch } from "../core/batch.ts";
import type { BackendCapabilities } from "../core/capabilities.ts";
import { codecFor } from "../core/codec.ts";
import type { LayerConfig } from "../core/layer.ts";
import { type CaseTarget, reasonsFor } from "./reasons.ts";
import type { CaseContext, ConformanceCase } from "./case.ts";
import { ConformanceFailure } from "./case.ts";
import { CACHE_KINDS, type CacheKind, cacheKindInfo } from "./cache_kinds.ts";
import { caseDefaults } from "./defaults.ts";
import { caseAddress } from "./params.ts";
import { expectedDequantized } from "./scenario.ts";
import { craftedFor, type CraftedScale } from "./special_values.ts";
import { ONE_HOT } from "./tolerances.ts";
import { craftedScales } from "./write_cases.ts";

const EIGHT_BIT = CACHE_KINDS.filter((k) =>
  !["fp32", "fp16", "bf16"].includes(k)
);
/** 16 query heads over 2 kv heads: 8 dims of a key probed per query. */
const HEADS = { q: 16, kv: 2 } as const;

/** The one-hot cases for one target's capabilities. */
export function oneHotCases(target: CaseTarget): ConformanceCase[] {
  const caps = target.capabilities;
  const d = caseDefaults(caps);
  return EIGHT_BIT.flatMap((cache) =>
    (["pow2", "odd"] as const).map((scale) => {
      const info = cacheKindInfo(cache);
      const layer: LayerConfig = {
        index: 0,
        kind: "full",
        numQHeads: HEADS.q,
        numKvHeads: HEADS.kv,
        headDim: d.headDim,
        scale: d.headDim ** -0.5,
        kvDtype: info.dtype,
        blockSize: d.blockSize,
        ...(info.int8Scheme ? { int8Scheme: info.int8Scheme } : {}),
      };
      const reasons = reasonsFor(target, layer);
      if (!caps.decode) reasons.push("decode is not supported");
      return {
        address: caseAddress("onehot", {
          cache,
          scale,
          headDim: d.headDim,
          blockSize: d.blockSize,
        }),
        ...(reasons.length > 0 ? { skip: reasons.join("; ") } : {}),
        run: (ctx: CaseContext) =>
          runOneHot(ctx.backend, caps, layer, cache, scale),
      };
    })
  );
}

interface Seq {
  keys: Float32Array;
  values: Float32Array;
  query: Float32Array;
}

interface Probe {
  /** Query row index (token * numQHeads + head). */
  row: number;
  what: string;
  check(out: Float32Array): string | undefined;
}

async function runOneHot(
  backend: PlanningBackend,
  caps: BackendCapabilities,
  layer: LayerConfig,
  cache: CacheKind,
  scaleKind: CraftedScale,
) {
  const scales = craftedScales(cache, scaleKind);
  const { headDim: D } = layer;
  const g = HEADS.q / HEADS.kv, row = HEADS.kv * D, qRow = HEADS.q * D;
  const pth = layer.int8Scheme === "per_token_head";
  const side = (scale: number, zeroPoint: number) =>
    craftedFor({
      kvDtype: layer.kvDtype,
      perTokenHead: pth,
      scale,
      zeroPoint,
      headDim: D,
    });
  const seqs: Seq[] = [];
  const probes: Probe[] = [];
  // Per token and head, quantization is the same whatever the head count:
  // one head per "token" lets a single head be decoded alone.
  const decoded = (data: Float32Array, s: number, zp: number) =>
    expectedDequantized({ ...layer, numKvHeads: 1 }, data, s, zp);

  // V: one key (zero), its V row the crafted values.
  const v = side(scales.vScale, scales.vZeroPoint);
  for (let at = 0; at < v.x.length; at += row) {
    const values = new Float32Array(row);
    values.set(v.x.subarray(at, Math.min(at + row, v.x.length)));
    const why = (i: number) => v.why[at + i] ?? "padding";
    const expect = decoded(values, scales.vScale, scales.vZeroPoint);
    const t = seqs.length;
    seqs.push({
      keys: new Float32Array(row),
      values,
      query: new Float32Array(qRow),
    });
    for (let h = 0; h < HEADS.q; h++) {
      const kh = Math.floor(h / g);
      probes.push({
        row: t * HEADS.q + h,
        what: `V: sequence ${t} (one key) query head ${h}`,
        check: (out) => {
          for (let dd = 0; dd < D; dd++) {
            const i = kh * D + dd;
            const e = expect[i];
            const bad = judge(
              out[dd],
              e,
              gapAt(layer, e, scales.vScale, scales.vZeroPoint, expect, kh),
            );
            if (bad) {
              return `dim ${dd} (input ${values[i]} [${why(i)}]): actual ${
                out[dd]
              } expected ${e} (the stored V) ${bad}`;
            }
          }
          return undefined;
        },
      });
    }
  }

  // K: two keys, zero then the key under test; skipped for 8-bit compute.
  let kSkipped = "";
  if (caps.lowPrecisionCompute) {
    kSkipped =
      "K not probed: 8-bit compute rounds P to 8 bits, too coarse to name a key's code";
  } else {
    const k = side(scales.kScale, scales.kZeroPoint);
    const expectK = (x: number, anchor: number | undefined) => {
      const r = new Float32Array(D);
      r[1] = x;
      if (anchor !== undefined) r[0] = anchor;
      const e = decoded(r, scales.kScale, scales.kZeroPoint);
      return { e: e[1], head: e };
    };
    // Heads of probes: [anchor?, values...]; NaN codes poison their whole
    // kv head (0 * NaN), so each gets a head of its own.
    type Item = { x: number; why: string; anchor?: number };
    const items: Item[] = [];
    const chunk = pth ? D : k.x.length;
    for (let c = 0; c < k.x.length; c += chunk) {
      const anchor = pth ? k.x[c] : undefined;
      for (let i = pth ? c + 1 : c; i < Math.min(c + chunk, k.x.length); i++) {
        if (
          !isFinite(expectK(k.x[i], anchor).e) &&
          !isNaN(expectK(k.x[i], anchor).e)
        ) continue;
        items.push({ x: k.x[i], why: k.why[i], anchor });
      }
    }
    const heads: Item[][] = [];
    let open: Item[] = [];
    for (const it of items) {
      if (isNaN(expectK(it.x, it.anchor).e)) {
        heads.push([it]);
        continue;
      }
      if (open.length > 0 && open[0].anchor !== it.anchor) {
        (heads.push(open), open = []);
      }
      open.push(it);
      if (open.length === g) (heads.push(open), open = []);
    }
    if (open.length > 0) heads.push(open);
    const v0 = Math.fround(20 * scales.vScale);
    for (let hs = 0; hs < heads.length; hs += HEADS.kv) {
      const t = seqs.length;
      const keys = new Float32Array(2 * row);
      const values = new Float32Array(2 * row);
      const query = new Float32Array(qRow);
      for (let kh = 0; kh < HEADS.kv; kh++) {
        values[kh * D] = v0;
        values[row + kh * D + 1] = v0;
      }
      const w = decoded(values, scales.vScale, scales.vZeroPoint);
      for (let kh = 0; kh < HEADS.kv && hs + kh < heads.length; kh++) {
        const items = heads[hs + kh];
        const base = row + kh * D;
        // Probed dims: spread over the head, never dim 0 (the anchor).
        const dimOf = (j: number) => 1 + ((j * 13 + t) % (D - 1));
        if (items[0].anchor !== undefined) keys[base] = items[0].anchor;
        items.forEach((it, j) => (keys[base + dimOf(j)] = it.x));
        const stored = decoded(
          keys.subarray(base, base + D),
          scales.kScale,
          scales.kZeroPoint,
        );
        const w0 = w[kh * D], w1 = w[row + kh * D + 1];
        for (let j = 0; j < g; j++) {
          const h = kh * g + j;
          const it = items[Math.min(j, items.length - 1)];
          const dim = dimOf(Math.min(j, items.length - 1));
          const e = stored[dim];
          const gap = gapAt(
            layer,
            e,
            scales.kScale,
            scales.kZeroPoint,
            stored,
            0,
          );
          const alpha = isNaN(e)
            ? 1
            : ONE_HOT.logitGap / (Math.max(Math.abs(e), gap) * layer.scale);
          query[h * D + dim] = alpha;
          probes.push({
            row: t * HEADS.q + h,
            what:
              `K: sequence ${t} (two keys) query head ${h} one-hot on dim ${dim} (alpha ${alpha})`,
            check: (out) => {
              const got = Math.log((out[1] / w1) / (out[0] / w0)) /
                (alpha * layer.scale);
              const bad = judge(got, e, gap);
              return bad
                ? `input ${it.x} [${it.why}]: key recovered: actual ${got} expected ${e} (the stored K; outputs ${
                  out[0]
                }, ${out[1]}) ${bad}`
                : undefined;
            },
          });
        }
      }
      seqs.push({ keys, values, query });
    }
  }

  // One decode batch: every sequence's query is its last position.
  const { blockSize } = layer;
  const perSeq = (n: number) => Math.ceil(n / blockSize);
  const lens = seqs.map((s) => s.keys.length / row);
  const width = Math.max(...lens.map(perSeq));
  const numBlocks = lens.reduce((a, n) => a + perSeq(n), 0) + 1;
  const c = await backend.createCache(layer, { numBlocks, scales });
  try {
    const tables = new Int32Array(seqs.length * width).fill(-1);
    const slots: number[] = [];
    let next = 0;
    lens.forEach((n, s) => {
      for (let b = 0; b < perSeq(n); b++) tables[s * width + b] = next++;
      for (let j = 0; j < n; j++) {
        slots.push(
          tables[s * width + Math.floor(j / blockSize)] * blockSize +
            (j % blockSize),
        );
      }
    });
    await backend.write(c, {
      keys: concat(seqs.map((s) => s.keys)),
      values: concat(seqs.map((s) => s.values)),
      slotMapping: Int32Array.from(slots),
    });
    const plan = planBatch({
      queryStartLoc: Int32Array.from({ length: seqs.length + 1 }, (_, i) => i),
      seqLens: Int32Array.from(lens),
      blockTables: tables,
      maxBlocksPerSeq: width,
      blockSize,
    });
    const out = new Float32Array(seqs.length * qRow).fill(NaN);
    await backend.attend(c, backend.plan(plan), {
      query: concat(seqs.map((s) => s.query)),
      out,
    });
    const failures: string[] = [];
    for (const p of probes) {
      const bad = p.check(out.subarray(p.row * D, (p.row + 1) * D));
      if (bad) failures.push(`  ${p.what}: ${bad}`);
    }
    if (failures.length > 0) {
      // Up to four of each kind, so that a K fault shows beside V's.
      const shown = ["  V:", "  K:"].flatMap((k) =>
        failures.filter((f) => f.startsWith(k)).slice(0, 4)
      );
      throw new ConformanceFailure(
        `${failures.length} of ${probes.length} one-hot probes name the wrong code (K scale ${scales.kScale}, zero point ${scales.kZeroPoint}; V scale ${scales.vScale}, zero point ${scales.vZeroPoint}; labels in [] are in units of x / scale):\n${
          shown.join("\n")
        }${
          failures.length > shown.length
            ? `\n  ... and ${failures.length - shown.length} more`
            : ""
        }\n  rule: ${ONE_HOT.rule}`,
      );
    }
    return {
      probes: probes.length,
      ...(kSkipped ? { kProbes: 0 } : {}),
    };
  } finally {
    await backend.disposeCache?.(c);
  }
}

/** Why `got` does not name the code `e` (undefined when it does). */
function judge(got: number, e: number, gap: number): string | undefined {
  if (isNaN(e)) return isNaN(got) ? undefined : "(NaN)";
  if (!isFinite(e)) return got === e ? undefined : `(${e})`;
  const bound = ONE_HOT.fractionOfGap * gap;
  return Math.abs(got - e) <= bound
    ? undefined
    : `(|diff| ${Math.abs(got - e).toPrecision(3)} > ${
      bound.toPrecision(3)
    }, ${ONE_HOT.fractionOfGap} of the gap ${
      gap.toPrecision(3)
    } to its neighbouring codes)`;
}

/**
 * The distance from the decoded value e to the nearest other code value of
 * the format at this scale (per_token_head: the head's own scale, found from
 * the decoded head `head` at kv head `kh`).
 */
function gapAt(
  layer: LayerConfig,
  e: number,
  scale: number,
  zp: number,
  head: Float32Array,
  kh: number,
): number {
  const values: number[] = [];
  if (layer.int8Scheme === "per_token_head") {
    // The head's scale: amax / 127 of its own data; its code values are k * s.
    const D = layer.headDim;
    let s = 0;
    for (let d = 0; d < D; d++) {
      const x = Math.abs(head[kh * D + d]);
      if (isFinite(x)) s = Math.max(s, x / 127);
    }
    if (s === 0) s = 1;
    const q = Math.round(e / s);
    for (const k of [q - 1, q + 1]) values.push(k * s);
  } else {
    const codec = codecFor(layer.kvDtype);
    const lo = layer.kvDtype === "int8" ? -128 : 0;
    for (let c = lo; c < lo + 256; c++) {
      const x = codec.decode(c, scale, zp);
      if (isFinite(x) && x !== e) values.push(x);
    }
  }
  let gap = Infinity;
  for (const x of values) gap = Math.min(gap, Math.abs(x - e));
  return gap;
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
}
