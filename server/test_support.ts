/**
 * A tiny engine for server tests: a counting "model" (next token = last + 1
 * mod 32, 31 = EOS) over the real reference backend, and a letters
 * tokenizer (a = 0 ... z = 25). Deterministic, so any lost or duplicated
 * token shows.
 *
 * @module
 */

import referenceBackend, {
  createReferenceBackend,
  REFERENCE_CAPABILITIES,
  type ReferenceCache,
} from "../backends/reference/mod.ts";
import {
  BACKEND_API_VERSION,
  type BackendDefinition,
} from "../core/backend.ts";
import { defineBackend } from "../core/define_backend.ts";
import { parseModelConfig } from "../core/model_config.ts";
import { selectBackends } from "../core/selector.ts";
import { Engine } from "../engine/engine.ts";
import { COUNTING_VOCAB, countingModel } from "../engine/counting_model.ts";
import type { ChatMessage, ServerTokenizer } from "./app.ts";

export const VOCAB = COUNTING_VOCAB;

/** Letters a..z are ids 0..25; other ids decode as "#". */
export const letters: ServerTokenizer = {
  encode: (text) =>
    [...text].map((c) => c.charCodeAt(0) - 97).filter((i) => i >= 0 && i < 26),
  decode: (ids) =>
    ids.map((i) => (i < 26 ? String.fromCharCode(97 + i) : "#")).join(""),
  encodeChat: (messages: readonly ChatMessage[]) =>
    letters.encode(messages.map((m) => m.content).join("")),
  eosTokenIds: [31],
};

/** What the "faulty" backend throws from attend() while `error` is set. */
export interface Fault {
  error?: unknown;
}

/**
 * The reference backend under the name "faulty", whose attend() throws
 * `fault.error` while it is set: a backend failing mid-step, for the
 * server's error mapping.
 */
export function faultyBackend(fault: Fault): BackendDefinition {
  return defineBackend({
    apiVersion: BACKEND_API_VERSION,
    name: "faulty",
    version: "0.0.0",
    description: "the reference backend, throwing on demand (server tests)",
    targets: [{
      target: "reference",
      capabilities: REFERENCE_CAPABILITIES,
      probe: () => ({ available: true }),
      create: () => {
        const inner = createReferenceBackend();
        return {
          ...inner,
          name: "faulty",
          attend(cache, plan, input) {
            if (fault.error !== undefined) throw fault.error;
            inner.attend(cache as ReferenceCache, plan, input);
          },
        };
      },
    }],
  });
}

/** An engine over the counting model (on the faulty backend when given a fault). */
export async function testEngine(
  state: { nan?: boolean; delayMs?: number } = {},
  o: { kvCacheMemory?: number; fault?: Fault } = {},
): Promise<Engine> {
  const backend = o.fault ? faultyBackend(o.fault) : referenceBackend;
  const spec = parseModelConfig({
    model_type: "llama",
    num_hidden_layers: 1,
    num_attention_heads: 1,
    head_dim: 8,
    hidden_size: 8,
    torch_dtype: "float32",
  }, { name: "counting" });
  const plan = selectBackends(spec, [{
    definition: backend,
    availability: new Map([["reference", { available: true }]]),
  }], { blockSize: 4 });
  return await Engine.create({
    model: countingModel(state),
    tokenizer: letters,
    plan,
    backends: [backend],
    kvCacheMemory: o.kvCacheMemory ?? 4 << 20,
    maxModelLen: 128,
    maxNumSeqs: 64,
    maxNumBatchedTokens: 512,
  });
}
