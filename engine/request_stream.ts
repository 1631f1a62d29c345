/**
 * One request's output as an async iterable of deltas, plus its final state.
 * The engine pushes; a client (the HTTP server, a benchmark) pulls, or
 * awaits the whole result. Aborting frees the request's blocks at once.
 *
 * @module
 */

import type { Sampler } from "./sampler.ts";
import type { SamplingParams } from "./sampling_params.ts";
import type { FinishReason, Sequence } from "./sequence.ts";
import type { StopChecker } from "./stop_checker.ts";

/** New output since the last delta. */
export interface OutputDelta {
  /** Tokens sampled since the last delta; empty when only held-back text is released. */
  readonly tokenIds: readonly number[];
  /**
   * Text safe to send: may lag tokenIds, since a partial character or a
   * possible stop-string prefix is held back; stop strings never appear.
   */
  readonly text: string;
}

/** A finished request. */
export interface RequestResult {
  /** The whole output text (every delta's text), ending before any stop string. */
  readonly text: string;
  /** Every output token streamed, in order; the end-of-sequence token is not included. */
  readonly tokenIds: readonly number[];
  /** Why generation ended (a stop string or EOS, max_tokens or the context, an abort). */
  readonly finishReason: FinishReason;
  /** Tokens in the prompt, for usage reporting. */
  readonly promptTokens: number;
  /** Output tokens generated, for usage reporting; unlike tokenIds, counts a final EOS. */
  readonly completionTokens: number;
}

/** A request's stream of deltas. */
export class RequestStream implements AsyncIterable<OutputDelta> {
  /** The scheduler's sequence for this request: its tokens and block state. */
  readonly seq: Sequence;
  /** The validated sampling parameters, defaults filled. */
  readonly params: SamplingParams;
  /** This request's own sampler, so that a seed reproduces its output. */
  readonly sampler: Sampler;
  /** Stop-string tracking over the decoded output. */
  readonly stop: StopChecker;
  /** Set when the request ends; undefined while it runs. */
  finishReason?: FinishReason;
  /** Set when the request failed (a backend error): the server reports it. */
  error?: Error;
  readonly #queue: OutputDelta[] = [];
  #wake?: () => void;
  #onAbort: () => void;
  #text = "";
  readonly #tokenIds: number[] = [];

  /**
   * Creates the stream; the engine does this when a request is added.
   *
   * @param onAbort Frees the request's blocks; {@linkcode RequestStream.abort} calls it while the request runs.
   */
  constructor(
    seq: Sequence,
    params: SamplingParams,
    sampler: Sampler,
    stop: StopChecker,
    onAbort: () => void,
  ) {
    this.seq = seq;
    this.params = params;
    this.sampler = sampler;
    this.stop = stop;
    this.#onAbort = onAbort;
  }

  /** Engine side: new output. */
  push(delta: OutputDelta): void {
    this.#text += delta.text;
    this.#tokenIds.push(...delta.tokenIds);
    this.#queue.push(delta);
    this.#wake?.();
  }

  /** Engine side: the end. */
  close(reason: FinishReason, error?: Error): void {
    this.finishReason = reason;
    this.error = error;
    this.#wake?.();
  }

  /** Client side: stop generating and free the request's blocks. */
  abort(): void {
    if (this.finishReason === undefined) this.#onAbort();
  }

  /** Whether the request has ended (queued deltas may still be unread). */
  get done(): boolean {
    return this.finishReason !== undefined;
  }

  /** Yields each delta once, in order, and returns when the request has ended. */
  async *[Symbol.asyncIterator](): AsyncIterator<OutputDelta> {
    for (;;) {
      while (this.#queue.length > 0) yield this.#queue.shift()!;
      if (this.done) return;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = undefined;
    }
  }

  /** Waits for the end; throws the request's error if it failed. */
  async result(): Promise<RequestResult> {
    for await (const _ of this) { /* drain */ }
    if (this.error) throw this.error;
    return {
      text: this.#text,
      tokenIds: this.#tokenIds,
      finishReason: this.finishReason!,
      promptTokens: this.seq.promptLength,
      completionTokens: this.seq.numOutput,
    };
  }
}
