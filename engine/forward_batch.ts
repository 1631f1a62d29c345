/**
 * What the scheduler hands the model for one step, and what each layer's
 * attention runs on. The model never sees sequences or blocks as such: only
 * tokens, positions, slots and the planned batch (vLLM's "flattened" batch).
 *
 * @module
 */

import type { AttentionBackend, LayerCache } from "../core/backend.ts";
import type { PlannedBatch } from "../core/batch.ts";

/** One step's tokens, flattened across sequences in queryStartLoc order. */
export interface ForwardBatch {
  /** Token ids. shape [numTokens], int32 */
  readonly tokens: Int32Array;
  /** Absolute position of each token (for RoPE). shape [numTokens], int32 */
  readonly positions: Int32Array;
  /** Cache slot each token's K/V is written to; -1 = padding. shape [numTokens], int32 */
  readonly slotMapping: Int32Array;
  /** The validated page tables, planned once for all layers. */
  readonly plan: PlannedBatch;
  /**
   * Token rows whose logits are needed (usually each sequence's last token).
   * shape [numLogits], int32
   */
  readonly logitRows: Int32Array;
}

/** The attention a layer runs: its backend instance and its cache (the plan comes with the batch). */
export interface LayerAttention {
  /** The live backend the selector chose for this layer. */
  readonly backend: AttentionBackend;
  /** This layer's cache, created by that backend and opaque to the model. */
  readonly cache: LayerCache;
}
