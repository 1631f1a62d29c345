/**
 * The flashinfer WebGPU tests' harness: the shared one
 * (webgpu/test_support.ts) bound to this backend, whose plan() the
 * scenarios attend through.
 *
 * @module
 */

import {
  type ScenarioSpec as SharedScenarioSpec,
  webGpuScenarios,
} from "../../webgpu/test_support.ts";
import {
  createFlashinferWebGpuBackend,
  type FlashinferWebGpuOptions,
} from "./webgpu_backend.ts";

export * from "../../webgpu/test_support.ts";

/** A batch, and the options of a backend of its own if not the shared one. */
export type ScenarioSpec = SharedScenarioSpec<FlashinferWebGpuOptions>;

/** One backend per test file, and scenarios on it (or on one of their own). */
export const { sharedBackend, runScenario } = webGpuScenarios(
  createFlashinferWebGpuBackend,
);
