/**
 * Times the attention part of a forward pass: each layer's backend is
 * wrapped so that its `write` (quantize into the cache) and `attend`
 * (read, dequantize, attend) add to a stopwatch. Everything else the
 * backend has passes through untouched.
 *
 * @module
 */

import type { AttentionBackend } from "../core/backend.ts";
import type { LayerAttention } from "../engine/forward_batch.ts";

/** A stopwatch over the backends' write and attend calls. */
export class AttentionTimer {
  /** Milliseconds spent in write and attend so far. */
  ms = 0;
  readonly #wrapped = new Map<AttentionBackend, AttentionBackend>();
  #lastIn?: readonly LayerAttention[];
  #lastOut: readonly LayerAttention[] = [];

  /**
   * The layers with timed backends. The engine passes the same array every
   * step, so the wrapped one is kept and reused.
   *
   * @example Usage
   * ```ts
   * import { AttentionTimer } from "./timed_attention.ts";
   * import { createReferenceBackend } from "../backends/reference/mod.ts";
   * import assert from "node:assert/strict";
   *
   * const timer = new AttentionTimer();
   * const backend = createReferenceBackend();
   * const layers = [{ backend, cache: {} as never }];
   * const [timed] = timer.wrap(layers);
   * assert.equal(timed.backend.name, "reference");
   * assert.equal(timer.wrap(layers)[0], timed);
   * ```
   */
  wrap(layers: readonly LayerAttention[]): readonly LayerAttention[] {
    if (layers !== this.#lastIn) {
      this.#lastIn = layers;
      this.#lastOut = layers.map((l) => ({
        backend: this.#timed(l.backend),
        cache: l.cache,
      }));
    }
    return this.#lastOut;
  }

  #timed(backend: AttentionBackend): AttentionBackend {
    let timed = this.#wrapped.get(backend);
    if (timed) return timed;
    const add = (ms: number) => (this.ms += ms);
    timed = new Proxy(backend, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (typeof value !== "function") return value;
        if (prop !== "write" && prop !== "attend") return value.bind(target);
        return async (...args: unknown[]) => {
          const start = performance.now();
          try {
            return await value.apply(target, args);
          } finally {
            add(performance.now() - start);
          }
        };
      },
    });
    this.#wrapped.set(backend, timed);
    return timed;
  }
}
