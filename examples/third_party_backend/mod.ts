/**
 * tiled_ts: a third-party attention backend in pure TypeScript, written only
 * against kvplug's public mod.ts. It shows the three freedoms a backend has:
 *
 * - its own cache layout (K and V planes of [numBlocks, numKvHeads,
 *   blockSize, headDim], a contiguous tile per block and kv head; cache.ts),
 * - its own kernel numerics (one pass over the blocks with an fp32 online
 *   softmax, flash-attention style; online_softmax.ts),
 * - its own per-batch metadata (plan(), reused by every layer; backend.ts),
 *
 * and the one thing it may not do: answer for a layer it did not declare.
 * Load it by path: `deno task conformance --backend
 * ./examples/third_party_backend/mod.ts`.
 *
 * @example Write two tokens and attend one decode query
 * ```ts
 * import tiledTs from "./mod.ts";
 * import { DEFAULT_SCALES, planBatch } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const backend = await tiledTs.targets[0].create();
 * const layer = {
 *   index: 0, kind: "full", numQHeads: 2, numKvHeads: 1, headDim: 8,
 *   scale: 1, kvDtype: "bf16", blockSize: 8,
 * } as const;
 * const cache = await backend.createCache(layer, { numBlocks: 4, scales: DEFAULT_SCALES });
 * // Two tokens in block 3 (slots 24 and 25); a padding row (-1) in between.
 * const keys = new Float32Array(3 * 8), values = new Float32Array(3 * 8);
 * values.fill(1, 0, 8).fill(99, 8, 16).fill(3, 16, 24);
 * await backend.write(cache, { keys, values, slotMapping: Int32Array.of(24, -1, 25) });
 * const batch = planBatch({
 *   queryStartLoc: Int32Array.of(0, 1), seqLens: Int32Array.of(2),
 *   blockTables: Int32Array.of(3), maxBlocksPerSeq: 1, blockSize: 8,
 * });
 * const out = new Float32Array(2 * 8);
 * await backend.attend(cache, backend.plan!(batch), { query: new Float32Array(16), out });
 * assert.deepEqual([...out], new Array(16).fill(2)); // equal logits: the mean of 1 and 3
 * await backend.dispose();
 * ```
 *
 * @module
 */

import { BACKEND_API_VERSION, defineBackend } from "../../mod.ts";
import { createTiledBackend, TILED_CAPABILITIES } from "./backend.ts";

export { createTiledBackend, TILED_CAPABILITIES };
export type { TiledBackend, TiledPlan } from "./backend.ts";
export { tiledBytesPerBlock, TiledCache } from "./cache.ts";
export { OnlineSoftmax } from "./online_softmax.ts";

/**
 * The definition the registry loads from this module's default export:
 * identity, and per target the capabilities as data plus a cheap probe.
 * Nothing is allocated until create().
 */
const tiledTs = defineBackend({
  apiVersion: BACKEND_API_VERSION,
  name: "tiled_ts",
  version: "0.1.0",
  description:
    "example third-party backend: tiled K/V planes, fp32 online softmax (TypeScript)",
  targets: [{
    // A CPU backend in plain TypeScript runs on the "reference" target.
    target: "reference",
    capabilities: TILED_CAPABILITIES,
    probe: () => ({ available: true }),
    create: () => createTiledBackend(),
  }],
});

export default tiledTs;
