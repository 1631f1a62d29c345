/**
 * Continuous batching over the paged cache, in vLLM V1's shape: every step
 * has a token budget; running sequences go first (a decode costs one token,
 * an unfinished prompt continues in chunks), then waiting ones are admitted
 * while blocks and budget last. Two admission policies, named as
 * TensorRT-LLM names them:
 *
 * - `max_utilization`: admit while the next chunk fits. When the pool runs
 *   dry, the most recently arrived running sequence is preempted: its
 *   blocks are freed and it is recomputed later (prompt and generated
 *   tokens), so nothing is lost but the recomputation.
 * - `guaranteed_no_evict`: admit only when the request's whole sequence
 *   (prompt + max_tokens) fits in the blocks not already promised to
 *   running requests, and keep that promise, so no running request is ever
 *   preempted. Fewer requests run at once when outputs end early.
 *
 * @module
 */

import type { KvCacheManager } from "../core/kv_cache_manager.ts";
import type { Sequence } from "./sequence.ts";

/** How waiting requests are admitted. */
export type SchedulingPolicy = "max_utilization" | "guaranteed_no_evict";

/** Every {@linkcode SchedulingPolicy}, the default first. */
export const SCHEDULING_POLICIES: readonly SchedulingPolicy[] = [
  "max_utilization",
  "guaranteed_no_evict",
];

/**
 * Checks a policy name, naming the valid ones on error.
 *
 * @example Usage
 * ```ts
 * import { parseSchedulingPolicy } from "./scheduler.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseSchedulingPolicy("guaranteed_no_evict"), "guaranteed_no_evict");
 * assert.throws(() => parseSchedulingPolicy("fcfs"), /use max_utilization or guaranteed_no_evict/);
 * ```
 */
export function parseSchedulingPolicy(name: string): SchedulingPolicy {
  if (SCHEDULING_POLICIES.includes(name as SchedulingPolicy)) {
    return name as SchedulingPolicy;
  }
  throw new RangeError(
    `"${name}" is not a scheduling policy: use ${
      SCHEDULING_POLICIES.join(" or ")
    }`,
  );
}

/** Limits of one step. */
export interface SchedulerConfig {
  /**
   * max_utilization admits greedily and preempts the newest request by
   * recompute when blocks run out (best throughput when outputs end before
   * max_tokens); guaranteed_no_evict reserves prompt + max_tokens per
   * request and never preempts. @default "max_utilization"
   */
  readonly schedulingPolicy?: SchedulingPolicy;
  /** Sequences in one batch. @default 64 */
  readonly maxNumSeqs?: number;
  /** Tokens in one batch (prefill chunks plus decodes). @default 2048 */
  readonly maxNumBatchedTokens?: number;
}

/** One sequence's share of a step. */
export interface ScheduledSequence {
  /** The sequence. */
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
  /** Sequences run this step, running ones first. */
  readonly scheduled: readonly ScheduledSequence[];
  /** Block copies to run before writing (copy on write). [src0, dst0, ...] */
  readonly copies: Int32Array;
  /** Sequences preempted this step (their blocks freed, to be recomputed). */
  readonly preempted: readonly Sequence[];
  /** Tokens in the step's batch. */
  readonly numTokens: number;
}

/** A request that can never run: the message says why and what to change. */
export class RequestTooLargeError extends RangeError {
  /** Creates the error; the message names the sizes and the fix. */
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
  readonly #policy: SchedulingPolicy;
  #waiting: Sequence[] = [];
  #running: Sequence[] = [];
  #preemptions = 0;

  /** A scheduler over the cache's pool; see {@linkcode SchedulerConfig}. */
  constructor(cache: KvCacheManager, config: SchedulerConfig = {}) {
    this.#cache = cache;
    this.#maxSeqs = config.maxNumSeqs ?? 64;
    this.#maxTokens = config.maxNumBatchedTokens ?? 2048;
    this.#policy = parseSchedulingPolicy(
      config.schedulingPolicy ?? "max_utilization",
    );
  }

  /** The admission policy. */
  get policy(): SchedulingPolicy {
    return this.#policy;
  }

  /** Sequences queued (new or preempted). */
  get numWaiting(): number {
    return this.#waiting.length;
  }
  /** Sequences holding blocks. */
  get numRunning(): number {
    return this.#running.length;
  }
  /** Preemptions since start. */
  get numPreemptions(): number {
    return this.#preemptions;
  }
  /** Whether any sequence waits or runs. */
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
    if (this.#policy === "guaranteed_no_evict") {
      if (!Number.isFinite(seq.maxTokens)) {
        throw new RangeError(
          `Sequence ${seq.id} has no max_tokens: guaranteed_no_evict reserves blocks for prompt + max_tokens, so pass maxTokens to new Sequence()`,
        );
      }
      const whole = this.#reservation(seq);
      if (whole > this.#cache.numBlocks) {
        throw new RequestTooLargeError(
          `The prompt (${seq.promptLength} tokens) plus max_tokens (${seq.maxTokens}) needs ${whole} KV blocks but the whole cache has ${this.#cache.numBlocks}: lower max_tokens, shorten the prompt or raise --kv-cache-memory`,
        );
      }
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
    // guaranteed_no_evict counts the blocks running sequences may still
    // take as taken, so what it admits can always grow to max_tokens.
    let promised = this.#policy === "guaranteed_no_evict"
      ? this.#running.reduce((a, s) => a + this.#stillNeeded(s), 0)
      : 0;
    while (
      preempted.length === 0 && budget > 0 && this.#waiting.length > 0 &&
      this.#running.length < this.#maxSeqs
    ) {
      const seq = this.#waiting[0];
      const n = Math.min(seq.numUncomputed, budget);
      if (this.#policy === "guaranteed_no_evict") {
        const whole = this.#reservation(seq);
        if (whole > this.#cache.numFreeBlocks - promised) break;
      }
      this.#cache.addSequence(seq.id);
      if (!this.#cache.canAppend(seq.id, n)) {
        this.#cache.free(seq.id);
        break;
      }
      this.#waiting.shift();
      seq.status = "running";
      this.#running.push(seq);
      take(seq, n);
      if (this.#policy === "guaranteed_no_evict") {
        promised += this.#stillNeeded(seq);
      }
    }
    return {
      scheduled,
      copies: Int32Array.from(copies),
      preempted,
      numTokens: this.#maxTokens - budget,
    };
  }

  /** Blocks a sequence's whole sequence takes. */
  #reservation(seq: Sequence): number {
    return Math.ceil(seq.maxCachedTokens / this.#cache.blockSize);
  }

  /** Blocks a running sequence may still take from the pool. */
  #stillNeeded(seq: Sequence): number {
    const more = seq.maxCachedTokens - this.#cache.numTokens(seq.id);
    return more > 0 ? this.#cache.blocksNeeded(seq.id, more) : 0;
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
