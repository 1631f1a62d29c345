/**
 * Per-layer KV cache scales. Sources, in order: a calibration file, a dynamic
 * estimate from the first batch (amax / format max), else 1.0 (vLLM's fp8
 * default, with a one-time warning). Scales are data handed to kernels, never
 * constants inside them. The file format is in docs/CALIBRATION.md.
 *
 * @module
 */

import {
  dtypeInfo,
  type Int8Scheme,
  KV_CACHE_DTYPES,
  type KvCacheDtype,
  parseKvCacheDtype,
} from "./dtype.ts";

/** One layer's K and V scales and zero points (zero points: int8 only). */
export interface LayerKvScales {
  /** Keys are stored as k / kScale; positive and finite, held as fp32 by kernels. */
  readonly kScale: number;
  /** Values are stored as v / vScale; positive and finite, held as fp32 by kernels. */
  readonly vScale: number;
  /** Integer -128..127 added to int8 key codes; 0 for every other dtype. */
  readonly kZeroPoint: number;
  /** Integer -128..127 added to int8 value codes; 0 for every other dtype. */
  readonly vZeroPoint: number;
}

/** Scale 1, zero point 0: what 16/32-bit caches use, and the fp8 fallback. */
export const DEFAULT_SCALES: LayerKvScales = Object.freeze({
  kScale: 1,
  vScale: 1,
  kZeroPoint: 0,
  vZeroPoint: 0,
});

/** A calibration file or scale source is missing, unreadable or invalid. */
export class CalibrationError extends Error {
  /** Creates the error; pass `{ cause }` to keep the underlying error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CalibrationError";
  }
}

/** Options for {@linkcode parseCalibrationFile} and {@linkcode loadCalibrationFile}. */
export interface CalibrationOptions {
  /** Layers in the model; the file must give each of 0..numLayers-1 once. */
  numLayers: number;
  /** Where the JSON came from, named in messages. @default "calibration data" */
  source?: string;
  /** The cache dtype; when set, `kv_cache_dtype` must match and only int8 may carry zero points. */
  dtype?: KvCacheDtype;
}

/**
 * Validates calibration JSON and returns one {@linkcode LayerKvScales} per
 * layer, indexed by layer. Schema (version 1):
 * `{ "version": 1, "kv_cache_dtype"?: string, "num_layers"?: integer,
 * "layers": [{ "layer": integer, "k_scale": number > 0, "v_scale": number > 0,
 * "k_zero_point"?: integer -128..127, "v_zero_point"?: integer -128..127 }] }`.
 * Every layer must appear exactly once, in any order.
 *
 * @throws {CalibrationError} Naming the field path (`layers[3].k_scale`) and its value.
 *
 * @example Parse and reject
 * ```ts
 * import { CalibrationError, parseCalibrationFile } from "./scales.ts";
 * import assert from "node:assert/strict";
 *
 * const json = { version: 1, layers: [{ layer: 0, k_scale: 0.02, v_scale: 0.01 }] };
 * const [l0] = parseCalibrationFile(json, { numLayers: 1 });
 * assert.equal(l0.kScale, 0.02);
 * json.layers[0].k_scale = -1;
 * assert.throws(() => parseCalibrationFile(json, { numLayers: 1 }), CalibrationError);
 * ```
 */
export function parseCalibrationFile(
  json: unknown,
  opts: CalibrationOptions,
): LayerKvScales[] {
  const { numLayers, dtype } = opts;
  if (!Number.isInteger(numLayers) || numLayers < 1) {
    throw new RangeError(
      `Invalid numLayers ${numLayers}: pass the model's layer count, a positive integer`,
    );
  }
  const where = opts.source === undefined
    ? "calibration data"
    : `calibration file "${opts.source}"`;
  const fail = (path: string, detail: string): never => {
    throw new CalibrationError(`Invalid ${where}: ${path} ${detail}`);
  };
  if (!isRecord(json)) {
    fail("the top level", `must be an object, got ${describe(json)}`);
  }
  const file = json as Record<string, unknown>;
  if (file.version !== 1) {
    fail(
      "version",
      `must be 1, got ${describe(file.version)}: write "version": 1`,
    );
  }
  if (file.kv_cache_dtype !== undefined) {
    const named = file.kv_cache_dtype;
    let fileDtype: KvCacheDtype | undefined;
    try {
      // Accepts the aliases users type (fp8, bfloat16, ...).
      fileDtype = parseKvCacheDtype(named as string);
    } catch {
      fail(
        "kv_cache_dtype",
        `is ${describe(named)}: use one of ${KV_CACHE_DTYPES.join(", ")}`,
      );
    }
    if (dtype !== undefined && fileDtype !== dtype) {
      fail(
        "kv_cache_dtype",
        `is "${fileDtype}" but the cache uses ${dtype}: calibrate for ${dtype} or change the cache dtype`,
      );
    }
  }
  if (file.num_layers !== undefined && file.num_layers !== numLayers) {
    fail(
      "num_layers",
      `is ${
        describe(file.num_layers)
      } but the model has ${numLayers} layers: use a calibration file made for this model`,
    );
  }
  if (!Array.isArray(file.layers)) {
    fail("layers", `must be an array, got ${describe(file.layers)}`);
  }
  const layers = file.layers as unknown[];
  const out: LayerKvScales[] = new Array(numLayers);
  const seenAt = new Map<number, number>();
  layers.forEach((entry, i) => {
    const at = `layers[${i}]`;
    if (!isRecord(entry)) fail(at, `must be an object, got ${describe(entry)}`);
    const e = entry as Record<string, unknown>;
    const layer = e.layer;
    if (typeof layer !== "number" || !Number.isInteger(layer)) {
      fail(`${at}.layer`, `must be an integer, got ${describe(layer)}`);
    }
    const l = layer as number;
    if (l < 0 || l >= numLayers) {
      fail(
        `${at}.layer`,
        `is ${l} but the model has layers 0 to ${
          numLayers - 1
        }: use a calibration file made for this model`,
      );
    }
    if (seenAt.has(l)) {
      fail(
        `${at}.layer`,
        `repeats layer ${l}, already given at layers[${
          seenAt.get(l)
        }]: give each layer once`,
      );
    }
    seenAt.set(l, i);
    const scale = (key: string): number => {
      const v = e[key];
      const f = typeof v === "number" ? Math.fround(v) : NaN;
      if (!(f > 0 && f < Infinity)) {
        fail(
          `${at}.${key}`,
          `must be a positive finite fp32 number, got ${
            describe(v)
          }: use amax / format max for this layer`,
        );
      }
      return v as number;
    };
    const zeroPoint = (key: string): number => {
      const v = e[key] ?? 0;
      if (
        typeof v !== "number" || !Number.isInteger(v) || v < -128 || v > 127
      ) {
        fail(
          `${at}.${key}`,
          `must be an integer from -128 to 127, got ${describe(v)}`,
        );
      }
      if (v !== 0 && dtype !== undefined && dtype !== "int8") {
        fail(
          `${at}.${key}`,
          `is ${v} but only int8 caches use zero points: remove it for ${dtype}`,
        );
      }
      return v as number;
    };
    out[l] = Object.freeze({
      kScale: scale("k_scale"),
      vScale: scale("v_scale"),
      kZeroPoint: zeroPoint("k_zero_point"),
      vZeroPoint: zeroPoint("v_zero_point"),
    });
  });
  for (let l = 0; l < numLayers; l++) {
    if (out[l] === undefined) {
      fail(
        "layers",
        `has no entry for layer ${l} (${layers.length} entries given, the model has ${numLayers} layers): add { "layer": ${l}, "k_scale": ..., "v_scale": ... }`,
      );
    }
  }
  return out;
}

/**
 * Reads and validates a calibration file (see {@linkcode parseCalibrationFile}).
 *
 * @throws {CalibrationError} When the file cannot be read, is not JSON, or is invalid.
 *
 * @example A missing file
 * ```ts
 * import { CalibrationError, loadCalibrationFile } from "./scales.ts";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(loadCalibrationFile("no_such_file.json", { numLayers: 2 }), CalibrationError);
 * ```
 */
export async function loadCalibrationFile(
  path: string,
  opts: CalibrationOptions,
): Promise<LayerKvScales[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new CalibrationError(
      `Cannot read calibration file "${path}": ${
        (e as Error).message
      }: check the path and the read permission`,
      { cause: e },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CalibrationError(
      `Calibration file "${path}" is not valid JSON: ${
        (e as Error).message
      }: fix the syntax or regenerate the file`,
      { cause: e },
    );
  }
  return parseCalibrationFile(json, { ...opts, source: path });
}

/** Options for {@linkcode estimateScales}. */
export interface EstimateOptions {
  /** int8 only: an asymmetric min/max scale with a zero point. @default false */
  zeroPoint?: boolean;
}

/**
 * Estimates a layer's scales from one batch of keys and values. fp8 and
 * symmetric int8: `fp32(amax / format max)` (448, 57344, 127). int8 with
 * `zeroPoint`: the range is widened to hold 0 (so that 0 stays exact and the
 * zero point stays in int8), then `scale = fp32((max - min) / 255)` and
 * `zeroPoint = clamp(roundHalfEven(-128 - min / scale), -128, 127)`.
 * Infinities and NaN are left out; an all-zero input gives scale 1. 16/32-bit
 * dtypes get {@linkcode DEFAULT_SCALES}.
 *
 * @param keys Keys of the batch, any shape, dtype float32.
 * @param values Values of the batch, any shape, dtype float32.
 *
 * @example fp8 scales
 * ```ts
 * import { estimateScales } from "./scales.ts";
 * import assert from "node:assert/strict";
 *
 * const s = estimateScales(new Float32Array([-896, 1]), new Float32Array([0, 0]), "fp8_e4m3");
 * assert.equal(s.kScale, 2);
 * assert.equal(s.vScale, 1);
 * ```
 */
export function estimateScales(
  keys: Float32Array,
  values: Float32Array,
  dtype: KvCacheDtype,
  opts: EstimateOptions = {},
): LayerKvScales {
  const info = dtypeInfo(dtype);
  if (!info.quantized) return DEFAULT_SCALES;
  if (dtype === "int8" && opts.zeroPoint) {
    const k = minMaxScale(keys);
    const v = minMaxScale(values);
    return Object.freeze({
      kScale: k[0],
      vScale: v[0],
      kZeroPoint: k[1],
      vZeroPoint: v[1],
    });
  }
  return Object.freeze({
    kScale: amaxScale(keys, info.maxFinite),
    vScale: amaxScale(values, info.maxFinite),
    kZeroPoint: 0,
    vZeroPoint: 0,
  });
}

function amaxScale(x: Float32Array, max: number): number {
  let amax = 0;
  for (let i = 0; i < x.length; i++) {
    const a = Math.abs(x[i]);
    if (a > amax && a < Infinity) amax = a;
  }
  const scale = Math.fround(amax / max);
  return scale > 0 ? scale : 1;
}

function minMaxScale(x: Float32Array): [number, number] {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v < lo && v > -Infinity) lo = v;
    if (v > hi && v < Infinity) hi = v;
  }
  const scale = Math.fround((hi - lo) / 255);
  if (!(scale > 0 && scale < Infinity)) return [1, 0];
  const z = -128 - Math.fround(lo / scale);
  // 1.5 * 2^52 rounds to an integer, ties to even.
  const zp = (z + 6755399441055744) - 6755399441055744;
  return [scale, Math.min(127, Math.max(-128, zp))];
}

const warned = new Set<KvCacheDtype>();

/**
 * The fallback scales when neither a calibration file nor a first batch is
 * available. 16/32-bit dtypes: {@linkcode DEFAULT_SCALES}, silently. fp8:
 * scale 1.0 with a warning, once per dtype per process, as vLLM does.
 *
 * @param warn Receives the warning. @default console.warn
 * @throws {CalibrationError} For int8: 1.0 would round most activations to 0.
 *
 * @example fp8 falls back to 1.0
 * ```ts
 * import { DEFAULT_SCALES, defaultScales } from "./scales.ts";
 * import assert from "node:assert/strict";
 *
 * const seen: string[] = [];
 * assert.equal(defaultScales("fp8_e5m2", (m) => seen.push(m)), DEFAULT_SCALES);
 * defaultScales("fp8_e5m2", (m) => seen.push(m));
 * assert.equal(seen.length, 1);
 * assert.throws(() => defaultScales("int8"));
 * ```
 */
export function defaultScales(
  dtype: KvCacheDtype,
  warn: (message: string) => void = console.warn,
): LayerKvScales {
  if (!dtypeInfo(dtype).quantized) return DEFAULT_SCALES;
  if (dtype === "int8") {
    throw new CalibrationError(
      "No scales for the per-tensor int8 KV cache: scale 1.0 would round most values to 0; pass a calibration file, let the first batch estimate the scales, or use the per_token_head int8 scheme",
    );
  }
  if (!warned.has(dtype)) {
    warned.add(dtype);
    warn(
      `Using KV cache scaling factor 1.0 for ${dtype}: this may cause accuracy issues; pass a calibration file or let the first batch estimate the scales`,
    );
  }
  return DEFAULT_SCALES;
}

/** Options for {@linkcode resolveLayerScales}. */
export interface ResolveScalesOptions {
  /** The cache dtype. */
  dtype: KvCacheDtype;
  /** Layers in the model. */
  numLayers: number;
  /** Scales from {@linkcode loadCalibrationFile}; used for every layer when given. */
  calibration?: LayerKvScales[];
  /** One batch of a layer's keys and values (float32), or undefined when none. */
  firstBatch?: (
    layer: number,
  ) => { keys: Float32Array; values: Float32Array } | undefined;
  /** How int8 is scaled; `per_token_head` needs no layer scales. @default "per_tensor" */
  int8Scheme?: Int8Scheme;
  /** int8 per-tensor estimates carry a zero point. @default false */
  zeroPoint?: boolean;
  /** Receives the fp8 fallback warning. @default console.warn */
  warn?: (message: string) => void;
}

/**
 * Scales for every layer, from the first source that has them: the
 * calibration, the first batch (per layer), then {@linkcode defaultScales}.
 * 16/32-bit dtypes and per-token-head int8 get {@linkcode DEFAULT_SCALES}.
 *
 * @throws {CalibrationError} When the calibration's layer count is wrong, or
 * an int8 per-tensor layer has no source.
 *
 * @example First batch, then the default
 * ```ts
 * import { resolveLayerScales } from "./scales.ts";
 * import assert from "node:assert/strict";
 *
 * const batch = { keys: new Float32Array([44.8]), values: new Float32Array([4.48]) };
 * const scales = resolveLayerScales({
 *   dtype: "fp8_e4m3",
 *   numLayers: 2,
 *   firstBatch: (layer) => (layer === 0 ? batch : undefined),
 *   warn: () => {},
 * });
 * assert.equal(scales[0].kScale, Math.fround(Math.fround(44.8) / 448));
 * assert.equal(scales[1].kScale, 1);
 * ```
 */
export function resolveLayerScales(
  opts: ResolveScalesOptions,
): LayerKvScales[] {
  const { dtype, numLayers } = opts;
  if (!Number.isInteger(numLayers) || numLayers < 0) {
    throw new RangeError(
      `Invalid numLayers ${numLayers}: pass the model's layer count, a non-negative integer`,
    );
  }
  const perTokenHead = dtype === "int8" && opts.int8Scheme === "per_token_head";
  if (!dtypeInfo(dtype).quantized || perTokenHead) {
    return new Array(numLayers).fill(DEFAULT_SCALES);
  }
  if (opts.calibration !== undefined) {
    if (opts.calibration.length !== numLayers) {
      throw new CalibrationError(
        `The calibration has ${opts.calibration.length} layers but the model has ${numLayers}: use a calibration file made for this model`,
      );
    }
    return [...opts.calibration];
  }
  return Array.from({ length: numLayers }, (_, layer) => {
    const batch = opts.firstBatch?.(layer);
    return batch === undefined
      ? defaultScales(dtype, opts.warn)
      : estimateScales(batch.keys, batch.values, dtype, {
        zeroPoint: opts.zeroPoint,
      });
  });
}

function isRecord(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "object" && v !== null) return "an object";
  return String(v);
}
