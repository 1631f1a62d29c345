/**
 * Loads a model config and the backends, probes targets, and selects: the
 * steps `deno task select` and `deno task serve` share.
 *
 * @module
 */

import { builtinRegistry } from "../backends/builtin.ts";
import type { BackendDefinition } from "../core/backend.ts";
import { loadModelConfig } from "../core/model_config.ts";
import { isModuleSpecifier } from "../core/registry.ts";
import {
  probeBackends,
  selectBackends,
  type SelectionPlan,
  type SelectOptions,
} from "../core/selector.ts";

/** The config `serve` and `select` use when no --model is given. */
export const DEMO_MODEL =
  new URL("../configs/demo-gemma2-tiny.json", import.meta.url)
    .pathname;

/** Selects backends for every layer of the model at `modelPath`. */
export async function planModel(
  modelPath: string,
  options: SelectOptions,
): Promise<SelectionPlan> {
  const model = await loadModelConfig(modelPath);
  const registry = builtinRegistry();
  const definitions: BackendDefinition[] = await registry.loadAll();
  let backend = options.backend;
  if (backend !== undefined && isModuleSpecifier(backend)) {
    // A third-party module joins the pool under its own name.
    const def = await registry.load(backend);
    definitions.push(def);
    backend = def.name;
  } else if (backend !== undefined) {
    await registry.load(backend); // unknown names fail here, with the fix
  }
  const probed = await probeBackends(definitions);
  return selectBackends(model, probed, { ...options, backend });
}
