/**
 * The inference engine: requests in, token streams out. Each step asks the
 * scheduler for work, runs copy-on-write copies, flattens the scheduled
 * sequences into one batch planned once for all layers, runs the model (each
 * layer through the backend the selector chose for it), samples, and
 * finishes sequences on EOS, max_tokens, stop strings or abort, freeing
 * their blocks at once.
 *
 * @module
 */

import type {
  AttentionBackend,
  BackendDefinition,
  LayerCache,
} from "../core/backend.ts";
import { planBatch } from "../core/batch.ts";
import { blocksForBudget } from "../core/blocks_for_budget.ts";
import { dtypeInfo } from "../core/dtype.ts";
import { KvCacheManager } from "../core/kv_cache_manager.ts";
import {
  DEFAULT_SCALES,
  defaultScales,
  type LayerKvScales,
} from "../core/scales.ts";
import type { SelectionPlan } from "../core/selector.ts";
import type { ForwardBatch, LayerAttention } from "./forward_batch.ts";
import { EngineMetrics } from "./metrics.ts";
import { Sampler } from "./sampler.ts";
import type { SamplingParams } from "./sampling_params.ts";
import {
  RequestTooLargeError,
  Scheduler,
  type SchedulerConfig,
} from "./scheduler.ts";
import { type FinishReason, Sequence } from "./sequence.ts";
import { RequestStream } from "./request_stream.ts";
import { StopChecker } from "./stop_checker.ts";

/** What the engine needs of a model. */
export interface EngineModel {
  readonly vocabSize: number;
  /** Logits for batch.logitRows. shape [numLogits, vocabSize], float32 */
  forward(
    batch: ForwardBatch,
    attention: readonly LayerAttention[],
  ): Promise<Float32Array>;
}

/** What the engine needs of a tokenizer (stop strings, streaming text). */
export interface EngineTokenizer {
  decode(ids: readonly number[]): string;
  readonly eosTokenIds: readonly number[];
}

/** Options for {@linkcode Engine.create}. */
export interface EngineOptions extends SchedulerConfig {
  readonly model: EngineModel;
  readonly tokenizer: EngineTokenizer;
  /** Per-layer backends, targets and cache configs (deno task select's plan). */
  readonly plan: SelectionPlan;
  /** Definitions of every backend the plan names. */
  readonly backends: readonly BackendDefinition[];
  /** Bytes for the KV cache of all layers together. @default 256 MiB */
  readonly kvCacheMemory?: number;
  /** Per-layer scales from a calibration file; otherwise the defaults. */
  readonly calibration?: readonly LayerKvScales[];
  /** Longest prompt + output. */
  readonly maxModelLen: number;
  /** Receives warnings (fp8 scale fallback). @default console.warn */
  readonly warn?: (message: string) => void;
}

/** The engine. Create with {@linkcode Engine.create}. */
export class Engine {
  readonly cache: KvCacheManager;
  readonly scheduler: Scheduler;
  readonly metrics: EngineMetrics = new EngineMetrics();
  readonly maxModelLen: number;
  readonly bytesPerBlock: number;
  readonly #model: EngineModel;
  readonly #tokenizer: EngineTokenizer;
  readonly #attention: readonly LayerAttention[];
  readonly #instances: readonly AttentionBackend[];
  readonly #streams = new Map<number, RequestStream>();
  #nextId = 0;
  readonly #backendNames: string;
  #loop?: Promise<void>;
  #closed = false;

  private constructor(
    o: EngineOptions,
    attention: LayerAttention[],
    instances: AttentionBackend[],
    cache: KvCacheManager,
    bytesPerBlock: number,
  ) {
    this.#model = o.model;
    this.#tokenizer = o.tokenizer;
    this.#attention = attention;
    this.#instances = instances;
    this.cache = cache;
    this.bytesPerBlock = bytesPerBlock;
    this.maxModelLen = o.maxModelLen;
    this.scheduler = new Scheduler(cache, o);
    this.#backendNames = [
      ...new Set(o.plan.decisions.map((d) => `${d.backend}/${d.target}`)),
    ].join(", ");
  }

  /** Creates the backends and every layer's cache, sized from the memory budget. */
  static async create(o: EngineOptions): Promise<Engine> {
    const instances = new Map<string, AttentionBackend>();
    for (const d of o.plan.decisions) {
      const key = `${d.backend}/${d.target}`;
      if (instances.has(key)) continue;
      const definition = o.backends.find((b) => b.name === d.backend);
      const target = definition?.targets.find((t) => t.target === d.target);
      if (!target) {
        throw new Error(
          `The plan uses ${key} but no such backend target was given to the engine: pass its definition in backends`,
        );
      }
      instances.set(key, await target.create());
    }
    const layers = o.plan.decisions.map((d) => ({
      d,
      backend: instances.get(`${d.backend}/${d.target}`)!,
    }));
    const bytesPerBlock = layers.reduce(
      (sum, { d, backend }) => sum + backend.cacheBytesPerBlock(d.layer),
      0,
    );
    const numBlocks = blocksForBudget(
      o.kvCacheMemory ?? 256 * 2 ** 20,
      bytesPerBlock,
    );
    const blockSize = o.plan.decisions[0]?.layer.blockSize ?? 16;
    const attention: LayerAttention[] = [];
    for (const { d, backend } of layers) {
      const cache: LayerCache = await backend.createCache(d.layer, {
        numBlocks,
        scales: scalesFor(d.layer, o.calibration?.[d.layer.index], o.warn),
      });
      attention.push({ backend, cache });
    }
    return new Engine(
      o,
      attention,
      [...instances.values()],
      new KvCacheManager({ numBlocks, blockSize }),
      bytesPerBlock,
    );
  }

  /**
   * Queues a request and returns its stream. Throws (before queueing) when
   * the prompt is empty, leaves no room for one token, or can never fit the
   * cache.
   */
  addRequest(prompt: readonly number[], params: SamplingParams): RequestStream {
    if (this.#closed) {
      throw new Error("The engine is shut down: it takes no new requests");
    }
    if (prompt.length === 0) {
      throw new RangeError("The prompt is empty: send at least one token");
    }
    if (prompt.length >= this.maxModelLen) {
      throw new RangeError(
        `The prompt has ${prompt.length} tokens but the model's context is ${this.maxModelLen}: shorten it`,
      );
    }
    // A request whose whole sequence can never fit the pool would preempt
    // itself forever: refuse it now.
    const need = Math.ceil(
      (prompt.length + params.maxTokens) / this.cache.blockSize,
    );
    if (need > this.cache.numBlocks) {
      throw new RequestTooLargeError(
        `The prompt (${prompt.length} tokens) plus max_tokens (${params.maxTokens}) needs ${need} KV blocks but the whole cache has ${this.cache.numBlocks}: lower max_tokens, shorten the prompt or raise --kv-cache-memory`,
      );
    }
    const id = this.#nextId++;
    const seq = new Sequence(id, prompt, id);
    this.scheduler.add(seq);
    const stream = new RequestStream(
      seq,
      params,
      new Sampler(params),
      new StopChecker(params.stop),
      () => this.#finish(seq, "abort"),
    );
    this.#streams.set(seq.id, stream);
    this.metrics.requestArrived(seq.id, prompt.length);
    this.#kick();
    return stream;
  }

  /** Runs one scheduling step; returns false when there was nothing to do. */
  async step(): Promise<boolean> {
    if (!this.scheduler.hasWork) return false;
    const out = this.scheduler.schedule();
    this.metrics.stepScheduled(
      out.scheduled.length,
      out.numTokens,
      out.preempted.length,
    );
    if (out.scheduled.length === 0) return true;
    if (out.copies.length > 0) {
      for (const a of this.#attention) {
        await a.backend.copyBlocks(a.cache, out.copies);
      }
    }
    const batch = this.#flatten(out.scheduled);
    let logits: Float32Array;
    try {
      logits = await this.#model.forward(batch, this.#attention);
    } catch (error) {
      // A failing backend fails the requests of this step, not the server.
      const failure = new Error(
        `The forward pass failed (attention backends: ${this.#backendNames}): ${
          (error as Error).message
        }`,
        { cause: error },
      );
      for (const s of out.scheduled) this.#finish(s.seq, "abort", failure);
      return true;
    }
    const vocab = this.#model.vocabSize;
    let row = 0;
    for (const s of out.scheduled) {
      const rowLogits = s.sample
        ? logits.subarray(row * vocab, (row + 1) * vocab)
        : undefined;
      if (s.sample) row++;
      // Aborted while the forward pass ran: its blocks are already free.
      if (s.seq.status === "finished") continue;
      s.seq.numComputed += s.numNewTokens;
      if (!rowLogits) continue;
      const stream = this.#streams.get(s.seq.id)!;
      if (rowLogits.some((x) => Number.isNaN(x))) {
        this.#finish(
          s.seq,
          "abort",
          new Error(
            `The model produced NaN logits (attention backends: ${this.#backendNames}): a backend or the weights are broken`,
          ),
        );
        continue;
      }
      const token = stream.sampler.sample(rowLogits);
      s.seq.tokens.push(token);
      this.metrics.tokenGenerated(s.seq.id);
      this.#emit(s.seq, stream, token);
    }
    return true;
  }

  #flatten(
    scheduled: ReturnType<Scheduler["schedule"]>["scheduled"],
  ): ForwardBatch {
    const numTokens = scheduled.reduce((a, s) => a + s.numNewTokens, 0);
    const tokens = new Int32Array(numTokens);
    const positions = new Int32Array(numTokens);
    const slotMapping = new Int32Array(numTokens);
    const queryStartLoc = new Int32Array(scheduled.length + 1);
    const seqLens = new Int32Array(scheduled.length);
    const logitRows: number[] = [];
    let t = 0;
    scheduled.forEach((s, i) => {
      for (let j = 0; j < s.numNewTokens; j++, t++) {
        tokens[t] = s.seq.tokens[s.seq.numComputed + j];
        positions[t] = s.seq.numComputed + j;
        slotMapping[t] = s.slots[j];
      }
      queryStartLoc[i + 1] = t;
      seqLens[i] = s.seq.numComputed + s.numNewTokens;
      if (s.sample) logitRows.push(t - 1);
    });
    const { blockTables, width } = this.cache.buildBlockTables(
      scheduled.map((s) => s.seq.id),
    );
    const plan = planBatch({
      queryStartLoc,
      seqLens,
      blockTables,
      maxBlocksPerSeq: width,
      blockSize: this.cache.blockSize,
    });
    return {
      tokens,
      positions,
      slotMapping,
      plan,
      logitRows: Int32Array.from(logitRows),
    };
  }

  #emit(seq: Sequence, stream: RequestStream, token: number): void {
    const eos = this.#tokenizer.eosTokenIds.includes(token) &&
      !stream.params.ignoreEos;
    if (eos) return this.#finish(seq, "stop");
    const text = this.#tokenizer.decode(seq.tokens.slice(seq.promptLength));
    const { delta, stopped } = stream.stop.push(text);
    stream.push({ tokenIds: [token], text: delta });
    if (stopped) return this.#finish(seq, "stop");
    if (
      seq.numOutput >= stream.params.maxTokens ||
      seq.tokens.length >= this.maxModelLen
    ) {
      return this.#finish(seq, "length");
    }
  }

  #finish(seq: Sequence, reason: FinishReason, error?: Error): void {
    if (seq.status === "finished") return;
    seq.finishReason = reason;
    this.scheduler.finish(seq);
    const stream = this.#streams.get(seq.id);
    this.#streams.delete(seq.id);
    if (stream && reason !== "abort") {
      const rest = stream.stop.flush(
        this.#tokenizer.decode(seq.tokens.slice(seq.promptLength)),
      );
      if (rest) stream.push({ tokenIds: [], text: rest });
    }
    this.metrics.requestFinished(seq.id, seq.numOutput);
    stream?.close(reason, error);
  }

  /** Starts the step loop if it is not running; it stops when idle. */
  #kick(): void {
    if (this.#loop) return;
    this.#loop = (async () => {
      // Start on the next tick, so requests added in the same turn share
      // the first step.
      await 0;
      try {
        while (await this.step()) {
          // Let HTTP handlers, aborts and new requests in between steps.
          await new Promise((r) => setTimeout(r, 0));
        }
      } finally {
        this.#loop = undefined;
        if (this.scheduler.hasWork && !this.#closed) this.#kick();
      }
    })();
  }

  /** Resolves when no request is waiting or running. */
  async idle(): Promise<void> {
    while (this.#loop) await this.#loop;
  }

  /** Aborts every request, waits for the loop, and releases the backends. */
  async shutdown(): Promise<void> {
    this.#closed = true;
    for (const stream of [...this.#streams.values()]) stream.abort();
    await this.idle();
    for (const b of this.#instances) await b.dispose();
  }

  /** The model's vocabulary size (token ids are 0..vocabSize-1). */
  get vocabSize(): number {
    return this.#model.vocabSize;
  }

  /** The backends in use, as name/target (for error messages). */
  get backendNames(): string {
    return this.#backendNames;
  }

  /** Requests waiting or running. */
  get numRequests(): number {
    return this.#streams.size;
  }
}

function scalesFor(
  layer: SelectionPlan["decisions"][number]["layer"],
  calibrated: LayerKvScales | undefined,
  warn?: (message: string) => void,
): LayerKvScales {
  if (!dtypeInfo(layer.kvDtype).quantized) return DEFAULT_SCALES;
  if (layer.kvDtype === "int8" && layer.int8Scheme === "per_token_head") {
    return DEFAULT_SCALES;
  }
  return calibrated ?? defaultScales(layer.kvDtype, warn);
}
