/**
 * What the engine counts: requests, tokens, preemptions, per-step batch
 * sizes, and per-request time to first token and time per output token.
 * The server exposes these as Prometheus metrics; the serving benchmark
 * reads them.
 *
 * @module
 */

interface Timing {
  readonly arrived: number;
  firstToken?: number;
  lastToken?: number;
  tokens: number;
}

/** Engine counters and latency samples. */
export class EngineMetrics {
  /** Prompt tokens of every request that arrived. */
  promptTokens = 0;
  /** Tokens sampled. */
  generationTokens = 0;
  /** Sequences preempted (always 0 under guaranteed_no_evict). */
  preemptions = 0;
  /** Requests finished for any reason. */
  requestsFinished = 0;
  /** Scheduling steps (iterations). */
  steps = 0;
  /** Sequences in each step's batch (the effective batch size). */
  readonly batchSizes: number[] = [];
  /** Tokens in each step's batch. */
  readonly batchTokens: number[] = [];
  /** Seconds from arrival to first token, per finished request. */
  readonly ttft: number[] = [];
  /** Seconds per output token after the first, per finished request. */
  readonly tpot: number[] = [];
  readonly #timings = new Map<number, Timing>();

  /** Starts a request's clock. */
  requestArrived(id: number, promptTokens: number): void {
    this.promptTokens += promptTokens;
    this.#timings.set(id, { arrived: performance.now(), tokens: 0 });
  }

  /** Records one iteration: its batch size, tokens and preemptions. */
  stepScheduled(seqs: number, tokens: number, preempted: number): void {
    this.steps++;
    this.preemptions += preempted;
    this.batchSizes.push(seqs);
    this.batchTokens.push(tokens);
  }

  /** Records a sampled token of a request. */
  tokenGenerated(id: number): void {
    this.generationTokens++;
    const t = this.#timings.get(id);
    if (!t) return;
    const now = performance.now();
    t.firstToken ??= now;
    t.lastToken = now;
    t.tokens++;
  }

  /** Stops a request's clock and keeps its TTFT and TPOT. */
  requestFinished(id: number, _outputTokens: number): void {
    const t = this.#timings.get(id);
    this.#timings.delete(id);
    this.requestsFinished++;
    if (!t?.firstToken) return;
    this.ttft.push((t.firstToken - t.arrived) / 1000);
    if (t.tokens > 1) {
      this.tpot.push((t.lastToken! - t.firstToken) / 1000 / (t.tokens - 1));
    }
  }
}
