/**
 * The kernel benchmark's grid, run through the backend contract only
 * (createCache, write, plan, attend, or encodeAttend where a WebGPU backend
 * offers it), so that any backend on any target joins without code here.
 * Every combination that cannot run is a skip with its reason.
 *
 * @module
 */

import type {
  AttentionBackend,
  BackendDefinition,
  BackendTarget,
} from "../../core/backend.ts";
import { unsupportedReasons } from "../../core/capabilities.ts";
import { settingsForUses } from "../../core/settings_plan.ts";
import type { LayerConfig } from "../../core/layer.ts";
import { builtinRegistry } from "../../backends/builtin.ts";
import { isDeviceResident } from "../../webgpu/mod.ts";
import { formatBytes } from "./bandwidth.ts";
import { timeEncodeAttend } from "./device_timing.ts";
import { timeAttend, type Timing } from "./host_timing.ts";
import type { KernelBenchOptions } from "./options.ts";
import {
  attentionFlops,
  type KernelMode,
  type KernelShape,
  kvBytesRead,
  layerFor,
} from "./shapes.ts";
import {
  blocksPerSeq,
  filledCache,
  gridBatch,
  randomFloats,
} from "./workload.ts";

/** One measured grid point. */
export interface KernelRow extends Timing {
  readonly backend: string;
  readonly target: string;
  readonly shape: string;
  readonly dtype: string;
  readonly mode: KernelMode;
  readonly context: number;
  readonly batch: number;
  /** KV bytes one call reads (see kvBytesRead). */
  readonly kvBytes: number;
  readonly flops: number;
}

/** Something not measured, and why. */
export interface Skip {
  readonly what: string;
  readonly reason: string;
}

/** What the grid produced. */
export interface GridResult {
  readonly rows: KernelRow[];
  readonly skips: Skip[];
}

/** The backends to measure: the named ones, or every built-in. */
export async function loadBackends(
  names: readonly string[],
): Promise<BackendDefinition[]> {
  const registry = builtinRegistry();
  return names.length === 0
    ? await registry.loadAll()
    : await Promise.all(names.map((n) => registry.load(n)));
}

/** Runs the grid for every backend's target `o.target`; `log` gets one line per point or skip. */
export async function runGrid(
  definitions: readonly BackendDefinition[],
  o: KernelBenchOptions,
  log: (line: string) => void,
): Promise<GridResult> {
  const result: GridResult = { rows: [], skips: [] };
  const skip = (what: string, reason: string) => {
    result.skips.push({ what, reason });
    log(`  skip ${what}: ${reason}`);
  };
  const settings = kernelSettings(definitions, o);
  for (const def of definitions) {
    const entry = def.targets.find((t) => t.target === o.target);
    if (!entry) {
      skip(def.name, `has no ${o.target} target`);
      continue;
    }
    const probe = await entry.probe();
    if (!probe.available) {
      skip(`${def.name}/${o.target}`, probe.reason);
      continue;
    }
    const backend = await entry.create({
      settings: settings[`${def.name}/${o.target}`],
    });
    try {
      for (const shape of o.shapes) {
        for (const dtype of o.dtypes) {
          const layer = layerFor(shape, dtype);
          const what = `${def.name}/${o.target} ${shape.name} ${dtype}`;
          const reasons = [
            ...unsupportedReasons(entry.capabilities, layer),
            ...(entry.extraReasons?.(layer) ?? []),
          ];
          if (reasons.length > 0) {
            skip(what, reasons.join("; "));
            continue;
          }
          await runLayer(backend, entry, shape, layer, o, result, log, skip);
        }
      }
    } finally {
      await backend.dispose();
    }
  }
  return result;
}

/**
 * Each measured backend's settings ("name/target" keys), from
 * `--backend-setting` with the schema defaults; checked before anything
 * runs, so a setting no measured backend takes (or a bad value) is an error
 * naming who declares it, not a silently unchanged measurement.
 *
 * @example Usage
 * ```ts
 * import { kernelSettings } from "./run.ts";
 * import { parseKernelArgs } from "./options.ts";
 * import fa3 from "../../backends/fa3/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const o = parseKernelArgs(["--backend-setting", "accumulationPromotion=false"]);
 * assert.equal(kernelSettings([fa3], o)["fa3/native"].accumulationPromotion, false);
 * assert.throws(
 *   () => kernelSettings([fa3], { ...o, backendSettings: { maxChunkKeys: "32" } }),
 *   /No backend in use takes the setting "maxChunkKeys"/,
 * );
 * ```
 */
export function kernelSettings(
  definitions: readonly BackendDefinition[],
  o: Pick<KernelBenchOptions, "target" | "backendSettings">,
): Record<string, Readonly<Record<string, unknown>>> {
  const uses = definitions
    .filter((d) => d.targets.some((t) => t.target === o.target))
    .map((definition) => ({ definition, target: o.target }));
  return settingsForUses(uses, o.backendSettings, definitions);
}

async function runLayer(
  backend: AttentionBackend,
  entry: BackendTarget,
  shape: KernelShape,
  layer: LayerConfig,
  o: KernelBenchOptions,
  result: GridResult,
  log: (line: string) => void,
  skip: (what: string, reason: string) => void,
): Promise<void> {
  const name =
    `${backend.name}/${backend.target} ${shape.name} ${layer.kvDtype}`;
  const blockBytes = backend.cacheBytesPerBlock(layer);
  const points: { mode: KernelMode; context: number; batch: number }[] = [];
  for (const mode of o.modes) {
    if (!entry.capabilities[mode]) {
      skip(`${name} ${mode}`, `${mode} batches are not supported`);
      continue;
    }
    for (const context of o.contexts) {
      for (const batch of o.batches) {
        const bytes = blockBytes * batch * blocksPerSeq(context);
        if (bytes > o.maxKvBytes) {
          skip(
            `${name} ${mode} context ${context} batch ${batch}`,
            `its cache takes ${formatBytes(bytes)}, over --max-kv-bytes ${
              formatBytes(o.maxKvBytes)
            }`,
          );
          continue;
        }
        points.push({ mode, context, batch });
      }
    }
  }
  // One cache serves every point; when the largest cannot be made (a
  // device's buffer limit, memory), its points are skipped and the next
  // largest is tried.
  const blocksOf = (p: { context: number; batch: number }) =>
    p.batch * blocksPerSeq(p.context);
  let cache;
  while (points.length > 0) {
    const numBlocks = Math.max(...points.map(blocksOf));
    log(
      `  ${name}: filling a cache of ${numBlocks} blocks (${
        formatBytes(numBlocks * blockBytes)
      })`,
    );
    try {
      cache = await filledCache(backend, layer, numBlocks, o.seed);
      break;
    } catch (e) {
      for (const p of points.filter((p) => blocksOf(p) === numBlocks)) {
        skip(
          `${name} ${p.mode} context ${p.context} batch ${p.batch}`,
          `its cache of ${numBlocks} blocks failed: ${(e as Error).message}`,
        );
      }
      points.splice(
        0,
        points.length,
        ...points.filter((p) => blocksOf(p) < numBlocks),
      );
    }
  }
  if (cache === undefined) return;
  const row = layer.numQHeads * layer.headDim;
  try {
    for (const p of points) {
      const batch = gridBatch(p.mode, p.context, p.batch, o.prefillTokens);
      const query = randomFloats(batch.numTokens * row, o.seed + 2);
      const budget = { repeat: o.repeat, minTimeMs: o.minTimeMs };
      const label = `${name} ${p.mode} context ${p.context} batch ${p.batch}`;
      let timing: Timing;
      try {
        timing = isDeviceResident(backend)
          ? await timeEncodeAttend(backend, cache, batch, query, budget)
          : await timeAttend(backend, cache, batch, query, budget);
      } catch (e) {
        skip(label, (e as Error).message);
        continue;
      }
      const kvBytes = kvBytesRead(layer, p.context, p.batch);
      const queryLen = batch.numTokens / p.batch;
      const r: KernelRow = {
        ...timing,
        backend: backend.name,
        target: backend.target,
        shape: shape.name,
        dtype: layer.kvDtype,
        ...p,
        kvBytes,
        flops: attentionFlops(layer, p.context, p.batch, queryLen),
      };
      result.rows.push(r);
      log(
        `  ${label}: ${r.ms.toFixed(3)} ms, ${
          (kvBytes / r.ms / 1e6).toFixed(2)
        } GB/s KV read (${r.samples} samples)`,
      );
    }
  } finally {
    await backend.disposeCache?.(cache);
  }
}
