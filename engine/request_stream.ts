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
  readonly tokenIds: readonly number[];
  readonly text: string;
}

/** A finished request. */
export interface RequestResult {
  readonly text: string;
  readonly tokenIds: readonly number[];
  readonly finishReason: FinishReason;
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/** A request's stream of deltas. */
export class RequestStream implements AsyncIterable<OutputDelta> {
  readonly seq: Sequence;
  readonly params: SamplingParams;
  readonly sampler: Sampler;
  readonly stop: StopChecker;
  finishReason?: FinishReason;
  /** Set when the request failed (a backend error): the server reports it. */
  error?: Error;
  readonly #queue: OutputDelta[] = [];
  #wake?: () => void;
  #onAbort: () => void;
  #text = "";
  readonly #tokenIds: number[] = [];

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

  get done(): boolean {
    return this.finishReason !== undefined;
  }

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
