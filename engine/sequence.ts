/**
 * One request's token stream as the scheduler sees it: prompt plus generated
 * tokens, and how many of them already have K/V in the cache.
 *
 * @module
 */

/** Why a sequence stopped. OpenAI's finish_reason values, plus abort. */
export type FinishReason = "stop" | "length" | "abort";

/** Where a sequence is. */
export type SequenceStatus = "waiting" | "running" | "finished";

/** A request's tokens and progress. */
export class Sequence {
  /** The request's id. */
  readonly id: number;
  /** Prompt then generated tokens. */
  readonly tokens: number[];
  /** Tokens of the prompt at the start of tokens. */
  readonly promptLength: number;
  /** Tokens whose K/V is in the cache (0 again after a preemption). */
  numComputed = 0;
  /** Where it is. */
  status: SequenceStatus = "waiting";
  /** Set when finished. */
  finishReason?: FinishReason;
  /** Arrival order: earlier sequences are scheduled first and preempted last. */
  readonly arrival: number;
  /** Times it was preempted and recomputed. */
  numPreemptions = 0;
  /**
   * Most tokens it may generate (max_tokens, capped by the context). The
   * guaranteed_no_evict policy reserves blocks for all of them at admission.
   */
  readonly maxTokens: number;

  /** A sequence of a prompt; maxTokens bounds its output. */
  constructor(
    id: number,
    prompt: readonly number[],
    arrival: number,
    maxTokens = Infinity,
  ) {
    this.id = id;
    this.tokens = [...prompt];
    this.promptLength = prompt.length;
    this.arrival = arrival;
    this.maxTokens = maxTokens;
  }

  /**
   * Most tokens whose K/V the cache will ever hold: the prompt and every
   * output token but the last, which is sampled and never run.
   */
  get maxCachedTokens(): number {
    return this.promptLength + this.maxTokens - 1;
  }

  /** Generated tokens so far. */
  get numOutput(): number {
    return this.tokens.length - this.promptLength;
  }

  /** Tokens still to run through the model before the next sample. */
  get numUncomputed(): number {
    return this.tokens.length - this.numComputed;
  }
}
