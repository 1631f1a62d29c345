/**
 * Continuous batching over the paged cache, in vLLM V1's shape: every step
 * has a token budget; running sequences go first (a decode costs one token,
 * an unfinished prompt continues in chunks), then waiting ones are admitted
 * while blocks and budget last. When the pool runs dry, the most recently
 * arrived running sequence is preempted: its blocks are freed and it is
 * recomputed later (prompt and generated tokens), so nothing is lost.
 *
 * @module
 */

import type { KvCacheManager } from "../core/kv_cache_manager.ts";
import type { Sequence } from "./sequence.ts";

/** Limits of one step. */
export interface SchedulerConfig {
  /** Sequences in one batch. @default 64 */
  readonly maxNumSeqs?: number;
  /** Tokens in one batch (prefill chunks plus decodes). @default 2048 */
  readonly maxNumBatchedTokens?: number;
}

/** One sequence's share of a step. */
export interface ScheduledSequence {
  readonly seq: Sequence;
  /** Tokens run this step, starting at seq.numComputed. */
  readonly numNewTokens: number;
  /** Their cache slots. shape [numNewTokens], int32 */
  readonly slots: Int32Array;
  /** The step completes the sequence's known tokens, so it samples. */
  readonly sample: boolean;
}

/** What one step runs. */
export interface SchedulerOutput {
  readonly scheduled: readonly ScheduledSequence[];
  /** Block copies to run before writing (copy on write). [src0, dst0, ...] */
  readonly copies: Int32Array;
  readonly preempted: readonly Sequence[];
  readonly numTokens: number;
}

/** A request that can never run: the message says why and what to change. */
export class RequestTooLargeError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = "RequestTooLargeError";
  }
}

/** The continuous-batching scheduler. */
export class Scheduler {
  readonly #cache: KvCacheManager;
  readonly #maxSeqs: number;
  readonly #maxTokens: number;
  #waiting: Sequence[] = [];
  #running: Sequence[] = [];
  #preemptions = 0;

  constructor(cache: KvCacheManager, config: SchedulerConfig = {}) {
    this.#cache = cache;
    this.#maxSeqs = config.maxNumSeqs ?? 64;
    this.#maxTokens = config.maxNumBatchedTokens ?? 2048;
  }

  get numWaiting(): number {
    return this.#waiting.length;
  }
  get numRunning(): number {
    return this.#running.length;
  }
  /** Preemptions since start. */
  get numPreemptions(): number {
    return this.#preemptions;
  }
  get hasWork(): boolean {
    return this.#waiting.length + this.#running.length > 0;
  }

  /**
   * Queues a sequence. A prompt that needs more blocks than the whole pool
   * can never run, so it is refused at once rather than left waiting.
   */
  add(seq: Sequence): void {
    const need = Math.ceil((seq.tokens.length + 1) / this.#cache.blockSize);
    if (need > this.#cache.numBlocks) {
      throw new RequestTooLargeError(
        `The prompt needs ${need} KV blocks but the whole cache has ${this.#cache.numBlocks}: shorten it or raise --kv-cache-memory`,
      );
    }
    seq.status = "waiting";
    this.#waiting.push(seq);
  }

  /** Removes a sequence wherever it is and frees its blocks. */
  finish(seq: Sequence): void {
    this.#running = this.#running.filter((s) => s !== seq);
    this.#waiting = this.#waiting.filter((s) => s !== seq);
    if (this.#cache.hasSequence(seq.id)) this.#cache.free(seq.id);
    seq.status = "finished";
  }

  /** Chooses this step's work. */
  schedule(): SchedulerOutput {
    let budget = this.#maxTokens;
    const scheduled: ScheduledSequence[] = [];
    const preempted: Sequence[] = [];
    const copies: number[] = [];
    const take = (seq: Sequence, n: number) => {
      const r = this.#cache.append(seq.id, n);
      for (const c of r.copies) copies.push(c.src, c.dst);
      scheduled.push({
        seq,
        numNewTokens: n,
        slots: r.slots,
        sample: seq.numComputed + n === seq.tokens.length,
      });
      budget -= n;
    };

    for (let i = 0; i < this.#running.length && budget > 0; i++) {
      const seq = this.#running[i];
      const n = Math.min(seq.numUncomputed, budget);
      while (!this.#cache.canAppend(seq.id, n)) {
        const victim = this.#running.at(-1)!;
        this.#preempt(victim);
        preempted.push(victim);
        if (victim === seq) break;
      }
      if (seq.status !== "running") break;
      take(seq, n);
    }

    // Admit waiting sequences only when nothing had to be preempted: a
    // preemption means the pool is already too small for what runs.
    while (
      preempted.length === 0 && budget > 0 && this.#waiting.length > 0 &&
      this.#running.length < this.#maxSeqs
    ) {
      const seq = this.#waiting[0];
      const n = Math.min(seq.numUncomputed, budget);
      this.#cache.addSequence(seq.id);
      if (!this.#cache.canAppend(seq.id, n)) {
        this.#cache.free(seq.id);
        break;
      }
      this.#waiting.shift();
      seq.status = "running";
      this.#running.push(seq);
      take(seq, n);
    }
    return {
      scheduled,
      copies: Int32Array.from(copies),
      preempted,
      numTokens: this.#maxTokens - budget,
    };
  }

  #preempt(seq: Sequence): void {
    this.#running = this.#running.filter((s) => s !== seq);
    this.#cache.free(seq.id);
    seq.numComputed = 0;
    seq.numPreemptions++;
    seq.status = "waiting";
    this.#preemptions++;
    // Back in arrival order, so it runs again before anything newer.
    const at = this.#waiting.findIndex((s) => s.arrival > seq.arrival);
    this.#waiting.splice(at === -1 ? this.#waiting.length : at, 0, seq);
  }
}
