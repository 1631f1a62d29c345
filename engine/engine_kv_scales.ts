/**
 * Where the engine's per-layer K/V scales come from, and the checks that
 * the choice fits the plan. Three sources, one per engine:
 *
 * - `calibration` (`--kv-quant-params-path FILE`): scales from a file,
 *   docs/CALIBRATION.md, known before the first request.
 * - `calculateKvScales` (`--calculate-kv-scales`): each scaled layer's cache
 *   is created at its first write, with `amax / format max` of the K/V that
 *   write carries (the first prefill step's tokens, after RoPE), and never
 *   changes after: later, larger values saturate (fp8) or clamp (int8).
 * - neither: 1.0 for fp8 with a warning; per-tensor int8 is refused.
 *
 * Only fp8 and per-tensor int8 caches have layer scales; asking for either
 * source when no layer has one is an error, not a silent no-op.
 *
 * @module
 */

import type {
  AttentionBackend,
  LayerCache,
  WriteInput,
} from "../core/backend.ts";
import { dtypeInfo, type KvCacheDtype } from "../core/dtype.ts";
import type { LayerConfig } from "../core/layer.ts";
import {
  CalibrationError,
  DEFAULT_SCALES,
  defaultScales,
  estimateScales,
  type LayerKvScales,
  loadCalibrationFile,
} from "../core/scales.ts";
import type { SelectionPlan } from "../core/selector.ts";
import type { LayerAttention } from "./forward_batch.ts";

/** The scale sources an engine is asked for. */
export interface KvScaleOptions {
  /** Per-layer scales from a calibration file, one per layer. */
  readonly calibration?: readonly LayerKvScales[];
  /** Estimate each scaled layer's scales from the first prefill. @default false */
  readonly calculateKvScales?: boolean;
}

/** Whether a layer's cache stores codes under per-layer scales (fp8, per-tensor int8). */
export function usesLayerScales(layer: LayerConfig): boolean {
  if (!dtypeInfo(layer.kvDtype).quantized) return false;
  return !(layer.kvDtype === "int8" && layer.int8Scheme === "per_token_head");
}

/**
 * Throws a {@linkcode CalibrationError} when both sources are given, when
 * neither applies to any layer of the plan, or when the calibration has the
 * wrong number of layers; the message says what to change.
 */
export function checkKvScaleOptions(
  plan: SelectionPlan,
  o: KvScaleOptions,
): void {
  const flag = o.calibration !== undefined
    ? "--kv-quant-params-path (calibration)"
    : "--calculate-kv-scales (calculateKvScales)";
  if (o.calibration !== undefined && o.calculateKvScales) {
    throw new CalibrationError(
      "Both --kv-quant-params-path (calibration) and --calculate-kv-scales (calculateKvScales) were given: the scales come from one source; keep the file for fixed, known scales or the flag to measure them on the first prefill",
    );
  }
  if (o.calibration === undefined && !o.calculateKvScales) return;
  if (!plan.decisions.some((d) => usesLayerScales(d.layer))) {
    const stored = [...new Set(plan.decisions.map((d) => describe(d.layer)))]
      .join(", ");
    throw new CalibrationError(
      `${flag} was given but no layer's KV cache has per-layer scales (the plan stores ${stored}): 16/32-bit caches are stored unscaled and int8 per_token_head scales each token itself; pass --kv-cache-dtype fp8_e4m3, fp8_e5m2 or int8 (with --int8-scheme per_tensor), or drop the flag`,
    );
  }
  const n = plan.decisions.length;
  if (o.calibration !== undefined && o.calibration.length !== n) {
    throw new CalibrationError(
      `The calibration has ${o.calibration.length} layers but the model has ${n}: use a calibration file made for this model`,
    );
  }
}

/**
 * Reads a calibration file for a plan: checks first that the plan has
 * scaled layers and that calculateKvScales is off (so those mistakes fail
 * before the file is read), then
 * validates the file against the layer count and the plan's 8-bit dtype.
 *
 * @throws {CalibrationError} Naming the path and the field.
 */
export async function loadKvQuantParams(
  path: string,
  plan: SelectionPlan,
  o: Pick<KvScaleOptions, "calculateKvScales"> = {},
): Promise<LayerKvScales[]> {
  checkKvScaleOptions(plan, {
    ...o,
    calibration: new Array(plan.decisions.length).fill(DEFAULT_SCALES),
  });
  const dtypes = new Set<KvCacheDtype>(
    plan.decisions.filter((d) => usesLayerScales(d.layer)).map((d) =>
      d.layer.kvDtype
    ),
  );
  return await loadCalibrationFile(path, {
    numLayers: plan.decisions.length,
    ...(dtypes.size === 1 ? { dtype: [...dtypes][0] } : {}),
  });
}

/** A layer's scales when they are known up front: calibration, else the defaults. */
export function fixedScales(
  layer: LayerConfig,
  calibrated: LayerKvScales | undefined,
  warn?: (message: string) => void,
): LayerKvScales {
  if (!usesLayerScales(layer)) return DEFAULT_SCALES;
  if (calibrated) return calibrated;
  if (layer.kvDtype === "int8") {
    // core's message names the sources; this one names the flags.
    throw new CalibrationError(
      `Layer ${layer.index} has a per-tensor int8 KV cache but no scales: scale 1.0 would round most values to 0; pass --kv-quant-params-path FILE (calibration), --calculate-kv-scales (calculateKvScales) or --int8-scheme per_token_head`,
    );
  }
  return defaultScales(layer.kvDtype, warn);
}

/**
 * A layer whose cache does not exist yet: the returned backend creates it
 * at the first write, with scales estimated from that write's keys and
 * values, calls `ready`, and from then on passes every call to the real
 * cache (so wrappers that kept the placeholder still work).
 */
export function deferredLayer(
  backend: AttentionBackend,
  layer: LayerConfig,
  numBlocks: number,
  ready: (attention: LayerAttention, scales: LayerKvScales) => void,
): LayerAttention {
  let real: LayerCache | undefined;
  const placeholder: LayerCache = { config: layer, numBlocks };
  const cacheFor = (what: string): LayerCache => {
    if (real) return real;
    throw new Error(
      `Layer ${layer.index}'s ${what} ran before its first write: --calculate-kv-scales creates the cache from the first prefill's K/V, so write before attending`,
    );
  };
  const own: Partial<AttentionBackend> = {
    write: async (_cache: LayerCache, input: WriteInput) => {
      if (!real) {
        const scales = estimateScales(input.keys, input.values, layer.kvDtype);
        real = await backend.createCache(layer, { numBlocks, scales });
        ready({ backend, cache: real }, scales);
      }
      await backend.write(real, input);
    },
    attend: (_cache, plan, io) => backend.attend(cacheFor("attend"), plan, io),
    // Nothing is stored before the first write, so nothing to copy.
    copyBlocks: (_cache, pairs) =>
      real ? backend.copyBlocks(real, pairs) : undefined,
  };
  if (backend.readCache) {
    own.readCache = (_cache, slots) =>
      backend.readCache!(cacheFor("readCache"), slots);
  }
  const proxy = new Proxy(backend, {
    get(target, prop) {
      if (Object.hasOwn(own, prop)) return own[prop as keyof AttentionBackend];
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { backend: proxy, cache: placeholder };
}

function describe(layer: LayerConfig): string {
  return layer.kvDtype === "int8"
    ? `int8 ${layer.int8Scheme ?? "per_tensor"}`
    : layer.kvDtype;
}
