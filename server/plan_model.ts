/**
 * Loads the backends, probes targets, and selects per layer: the steps
 * the server runs at start and `deno task select` prints. It lives in
 * server/ because the server needs it and server/ never imports tools/.
 *
 * @module
 */

import { builtinRegistry } from "../backends/builtin.ts";
import type { BackendDefinition } from "../core/backend.ts";
import type { ModelSpec } from "../core/model_config.ts";
import { isModuleSpecifier } from "../core/registry.ts";
import {
  probeBackends,
  type ProbedBackend,
  selectBackends,
  type SelectionPlan,
  type SelectOptions,
} from "../core/selector.ts";

/** The model `serve` and `select` use when no --model is given. */
export const DEFAULT_MODEL_DIR =
  new URL("../models/demo-gemma2", import.meta.url).pathname;

/** A plan, the definitions of every backend it may name, and their probes. */
export interface PlannedModel {
  readonly plan: SelectionPlan;
  readonly definitions: readonly BackendDefinition[];
  readonly probed: readonly ProbedBackend[];
}

/** Selects backends for every layer of a model spec. */
export async function planSpec(
  model: ModelSpec,
  options: SelectOptions,
): Promise<PlannedModel> {
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
  return {
    plan: selectBackends(model, probed, { ...options, backend }),
    definitions,
    probed,
  };
}
