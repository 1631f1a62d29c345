/**
 * Compiled shader modules and compute pipelines, kept per device so that each
 * WGSL source is compiled once and each (source, overrides) pair becomes one
 * pipeline, however many layers and backend instances ask for it.
 *
 * @module
 */

import { WgslCompileError } from "./errors.ts";

/** Options for {@linkcode PipelineCache.compute}. */
export interface ComputePipelineOptions {
  /** @default "main" */
  readonly entryPoint?: string;
  /** Values for the source's `override` declarations. @default {} */
  readonly constants?: Readonly<Record<string, number>>;
  /** Names the pipeline in errors and GPU debuggers. @default entryPoint */
  readonly label?: string;
}

/** A device's compiled modules and pipelines. */
export class PipelineCache {
  readonly #device: GPUDevice;
  readonly #modules = new Map<string, GPUShaderModule>();
  readonly #pipelines = new Map<string, Promise<GPUComputePipeline>>();

  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** How many distinct modules and pipelines have been compiled. */
  get size(): { modules: number; pipelines: number } {
    return { modules: this.#modules.size, pipelines: this.#pipelines.size };
  }

  /** The module for a WGSL source, compiled on first use. */
  module(code: string, label = "wgsl"): GPUShaderModule {
    let module = this.#modules.get(code);
    if (module === undefined) {
      module = this.#device.createShaderModule({ code, label });
      this.#modules.set(code, module);
    }
    return module;
  }

  /**
   * The compute pipeline for a source and its override constants, created on
   * first use with the layout inferred from the source.
   *
   * @throws {WgslCompileError} With the compiler's messages when the source
   * or the overrides are invalid (the failure is not cached).
   */
  compute(
    code: string,
    options: ComputePipelineOptions = {},
  ): Promise<GPUComputePipeline> {
    const entryPoint = options.entryPoint ?? "main";
    const constants = options.constants ?? {};
    // Sorted so that {a, b} and {b, a} share a pipeline.
    const key = JSON.stringify([
      entryPoint,
      Object.entries(constants).sort(([a], [b]) => a < b ? -1 : 1),
    ]) + "\n" + code;
    let pipeline = this.#pipelines.get(key);
    if (pipeline === undefined) {
      const label = options.label ?? entryPoint;
      // A bad source is reported below, with the compiler's messages; the
      // scope keeps it from also surfacing as an uncaptured error.
      this.#device.pushErrorScope("validation");
      const module = this.module(code, label);
      this.#device.popErrorScope().catch(() => {});
      pipeline = this.#device.createComputePipelineAsync({
        label,
        layout: "auto",
        compute: { module, entryPoint, constants: { ...constants } },
      }).catch(async (e) => {
        this.#pipelines.delete(key);
        if (this.#modules.get(code) === module) this.#modules.delete(code);
        const info = await module.getCompilationInfo();
        const report = info.messages.map((m) => m.message.trim()).join("\n");
        throw new WgslCompileError(
          `WGSL pipeline "${label}" failed to compile: ${
            report || (e as Error).message
          }`,
          { cause: e },
        );
      });
      this.#pipelines.set(key, pipeline);
    }
    return pipeline;
  }
}

const caches = new WeakMap<GPUDevice, PipelineCache>();

/**
 * The pipeline cache of a device (one per device, made on first use).
 *
 * @example Compiled once
 * ```ts
 * import { pipelineCacheFor, probeWebGpu } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await probeWebGpu();
 * if (probe.available) {
 *   const cache = pipelineCacheFor(probe.device);
 *   const code = "@compute @workgroup_size(1) fn main() {}";
 *   const a = await cache.compute(code);
 *   assert.equal(await cache.compute(code), a);
 * }
 * ```
 */
export function pipelineCacheFor(device: GPUDevice): PipelineCache {
  let cache = caches.get(device);
  if (cache === undefined) {
    cache = new PipelineCache(device);
    caches.set(device, cache);
  }
  return cache;
}
