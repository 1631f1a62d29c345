/**
 * The `kernelPath` setting every native target declares, in one place so
 * the backends agree on its name, domain and default.
 *
 * @example Usage
 * ```ts
 * import { KERNEL_PATH_SETTING, kernelPathOf } from "./kernel_path_setting.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(KERNEL_PATH_SETTING.default, "auto");
 * assert.equal(kernelPathOf({ kernelPath: "auto" }), undefined);
 * assert.equal(kernelPathOf({ kernelPath: "scalar" }), "scalar");
 * ```
 *
 * @module
 */

import type { BackendSetting } from "../core/settings.ts";
import { KERNEL_PATHS, type KernelPathName } from "./types.ts";

/** `kernelPath`: auto (KVPLUG_NATIVE_PATH, else the best path) or one path, on native only. */
export const KERNEL_PATH_SETTING: BackendSetting = {
  name: "kernelPath",
  type: "enum",
  values: ["auto", ...KERNEL_PATHS],
  default: "auto",
  targets: ["native"],
  description:
    "Run this CPU kernel path (downgrades only); auto: KVPLUG_NATIVE_PATH, else the best the CPU has",
};

/** The path a resolved `kernelPath` setting asks for; undefined for auto. */
export function kernelPathOf(
  settings: Readonly<Record<string, unknown>> | undefined,
): KernelPathName | undefined {
  const path = settings?.kernelPath;
  return path === undefined || path === "auto"
    ? undefined
    : path as KernelPathName;
}
