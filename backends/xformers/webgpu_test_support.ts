/**
 * The xformers WebGPU tests' harness: the shared one (webgpu/test_support.ts)
 * bound to this backend, whose attend() takes the core plan itself.
 *
 * @module
 */

import {
  type ScenarioSpec as SharedScenarioSpec,
  webGpuScenarios,
} from "../../webgpu/test_support.ts";
import {
  createXformersWebGpuBackend,
  type XformersWebGpuOptions,
} from "./webgpu_backend.ts";

export * from "../../webgpu/test_support.ts";

/** A batch, and the options of a backend of its own if not the shared one. */
export type ScenarioSpec = SharedScenarioSpec<XformersWebGpuOptions>;

/** One backend per test file, and scenarios on it (or on one of their own). */
export const { sharedBackend, runScenario } = webGpuScenarios(
  createXformersWebGpuBackend,
);
