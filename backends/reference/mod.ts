/**
 * The reference backend: pure TypeScript, fp64 math, every KV dtype, every
 * head dim. Always available; the selector's last resort and the model for
 * third-party backends (see docs/WRITING_BACKENDS.md).
 *
 * @example Usage
 * ```ts
 * import referenceBackend from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(referenceBackend.name, "reference");
 * const [target] = referenceBackend.targets;
 * assert.deepEqual(await target.probe(), { available: true });
 * ```
 *
 * @module
 */

import {
  BACKEND_API_VERSION,
  type BackendDefinition,
} from "../../core/backend.ts";
import { defineBackend } from "../../core/define_backend.ts";
import {
  createReferenceBackend,
  REFERENCE_CAPABILITIES,
} from "./reference_backend.ts";

export { createReferenceBackend, REFERENCE_CAPABILITIES };
export type { ReferenceBackend } from "./reference_backend.ts";
export { ReferenceCache } from "./reference_cache.ts";

/** The reference backend's definition, as the registry loads it. */
const referenceBackend: BackendDefinition = defineBackend({
  apiVersion: BACKEND_API_VERSION,
  name: "reference",
  version: "1.0.0",
  description:
    "fp64 oracle math in TypeScript (slow, exact; the example to copy)",
  targets: [{
    target: "reference",
    capabilities: REFERENCE_CAPABILITIES,
    probe: () => ({ available: true }),
    create: () => createReferenceBackend(),
  }],
});

export default referenceBackend;
