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
  readonly id: number;
  /** Prompt then generated tokens. */
  readonly tokens: number[];
  readonly promptLength: number;
  /** Tokens whose K/V is in the cache (0 again after a preemption). */
  numComputed = 0;
  status: SequenceStatus = "waiting";
  finishReason?: FinishReason;
  /** Arrival order: earlier sequences are scheduled first and preempted last. */
  readonly arrival: number;
  numPreemptions = 0;

  constructor(id: number, prompt: readonly number[], arrival: number) {
    this.id = id;
    this.tokens = [...prompt];
    this.promptLength = prompt.length;
    this.arrival = arrival;
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
