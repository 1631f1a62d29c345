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
import { attributeBackendError } from "../core/backend_errors.ts";
import { planBatch } from "../core/batch.ts";
import { blocksForBudget } from "../core/blocks_for_budget.ts";
import { KvCacheManager } from "../core/kv_cache_manager.ts";
import type { LayerKvScales } from "../core/scales.ts";
import type { SelectionPlan } from "../core/selector.ts";
import {
  checkKvScaleOptions,
  deferredLayer,
  fixedScales,
  usesLayerScales,
} from "./engine_kv_scales.ts";
import type { ForwardBatch, LayerAttention } from "./forward_batch.ts";
import { EngineMetrics } from "./metrics.ts";
import { Sampler } from "./sampler.ts";
import { type SamplingParams, samplingParams } from "./sampling_params.ts";
import {
  RequestTooLargeError,
  Scheduler,
  type SchedulerConfig,
} from "./scheduler.ts";
import { type FinishReason, Sequence } from "./sequence.ts";
import { type RequestResult, RequestStream } from "./request_stream.ts";
import { StopChecker } from "./stop_checker.ts";

/** What the engine needs of a model. */
export interface EngineModel {
  /** Logits per row; token ids are 0..vocabSize-1. */
  readonly vocabSize: number;
  /** Logits for batch.logitRows. shape [numLogits, vocabSize], float32 */
  forward(
    batch: ForwardBatch,
    attention: readonly LayerAttention[],
  ): Promise<Float32Array>;
}

/** What the engine needs of a tokenizer (stop strings, streaming text). */
export interface EngineTokenizer {
  /** Ids to text (output text and stop strings are matched on it). */
  decode(ids: readonly number[]): string;
  /** Ids that end a request (unless ignore_eos). */
  readonly eosTokenIds: readonly number[];
  /** (optional) Text to ids: lets generate() and stream() take a string. */
  encode?(text: string): number[];
}

/** Options for {@linkcode Engine.create}. */
export interface EngineOptions extends SchedulerConfig {
  /** The forward pass (e.g. a Transformer's). */
  readonly model: EngineModel;
  /** Decodes output; with encode, generate() takes text. */
  readonly tokenizer: EngineTokenizer;
  /** Per-layer backends, targets and cache configs (deno task select's plan). */
  readonly plan: SelectionPlan;
  /** Definitions of every backend the plan names. */
  readonly backends: readonly BackendDefinition[];
  /** Bytes for the KV cache of all layers together. @default 256 MiB */
  readonly kvCacheMemory?: number;
  /**
   * Per-layer scales from a calibration file (loadKvQuantParams), one per
   * layer; used by fp8 and per-tensor int8 layers. Not with
   * calculateKvScales. Otherwise fp8 gets 1.0 (with a warning).
   */
  readonly calibration?: readonly LayerKvScales[];
  /**
   * Estimate every fp8 / per-tensor int8 layer's scales from the K/V of the
   * first prefill step (amax / format max), then keep them fixed; that
   * layer's cache is created at its first write. Not with calibration.
   * @default false
   */
  readonly calculateKvScales?: boolean;
  /** Longest prompt + output. */
  readonly maxModelLen: number;
  /** Receives warnings (fp8 scale fallback). @default console.warn */
  readonly warn?: (message: string) => void;
}

/**
 * The engine. Create it with {@linkcode Engine.create} from parts you built
 * (a model, a tokenizer, a selection plan), or with `loadEngine()` from a
 * model directory. There is no `new Engine({...})`: creating the backends
 * and every layer's cache is asynchronous (native and WebGPU backends
 * allocate through async calls), and a constructor that cannot await would
 * either hand out an engine that is not ready or defer load errors to the
 * first request; an awaited factory reports them where they happen.
 */
export class Engine {
  /** Block tables over the shared pool (every layer uses the same block ids). */
  readonly cache: KvCacheManager;
  /** Chooses each step's work under the scheduling policy. */
  readonly scheduler: Scheduler;
  /** Counters per step and per request (preemptions, batch sizes, TTFT). */
  readonly metrics: EngineMetrics = new EngineMetrics();
  /** Longest prompt + output. */
  readonly maxModelLen: number;
  /** Bytes one block takes over all layers. */
  readonly bytesPerBlock: number;
  readonly #model: EngineModel;
  readonly #tokenizer: EngineTokenizer;
  readonly #attention: LayerAttention[];
  readonly #scales: (LayerKvScales | undefined)[];
  readonly #instances: readonly AttentionBackend[];
  readonly #streams = new Map<number, RequestStream>();
  #nextId = 0;
  readonly #backendNames: string;
  #loop?: Promise<void>;
  #closed = false;

  private constructor(
    o: EngineOptions,
    attention: LayerAttention[],
    scales: (LayerKvScales | undefined)[],
    instances: AttentionBackend[],
    cache: KvCacheManager,
    bytesPerBlock: number,
  ) {
    this.#model = o.model;
    this.#tokenizer = o.tokenizer;
    this.#attention = attention;
    this.#scales = scales;
    this.#instances = instances;
    this.cache = cache;
    this.bytesPerBlock = bytesPerBlock;
    this.maxModelLen = o.maxModelLen;
    this.scheduler = new Scheduler(cache, o);
    this.#backendNames = [
      ...new Set(o.plan.decisions.map((d) => `${d.backend}/${d.target}`)),
    ].join(", ");
  }

  /**
   * Creates the backends and every layer's cache, sized from the memory
   * budget (with calculateKvScales, scaled layers' caches are created at the
   * first prefill instead).
   *
   * @throws {CalibrationError} When calibration and calculateKvScales are
   * both given, or either is given but no layer has per-layer scales.
   */
  static async create(o: EngineOptions): Promise<Engine> {
    checkKvScaleOptions(o.plan, o);
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
      // The selector's checked settings (--backend-setting); the target
      // gate checks them again and fills in any default the plan lacks.
      const settings = o.plan.settings?.[key];
      instances.set(key, await target.create(settings ? { settings } : {}));
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
    const scales: (LayerKvScales | undefined)[] = [];
    for (const [l, { d, backend }] of layers.entries()) {
      if (o.calculateKvScales && usesLayerScales(d.layer)) {
        attention.push(deferredLayer(backend, d.layer, numBlocks, (a, s) => {
          attention[l] = a;
          scales[l] = s;
        }));
        scales.push(undefined);
        continue;
      }
      const s = fixedScales(d.layer, o.calibration?.[d.layer.index], o.warn);
      const cache: LayerCache = await backend.createCache(d.layer, {
        numBlocks,
        scales: s,
      });
      attention.push({ backend, cache });
      scales.push(s);
    }
    return new Engine(
      o,
      attention,
      scales,
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
    const id = this.#nextId++;
    // Output ends at max_tokens or at the context, whichever comes first.
    const maxTokens = Math.min(
      params.maxTokens,
      this.maxModelLen - prompt.length,
    );
    const seq = new Sequence(id, prompt, id, maxTokens);
    // A request whose whole sequence can never fit the pool would preempt
    // itself forever (or never be admitted): refuse it now.
    const need = Math.ceil(seq.maxCachedTokens / this.cache.blockSize);
    if (need > this.cache.numBlocks) {
      throw new RequestTooLargeError(
        `The prompt (${prompt.length} tokens) plus max_tokens (${params.maxTokens}) needs ${need} KV blocks but the whole cache has ${this.cache.numBlocks}: lower max_tokens, shorten the prompt or raise --kv-cache-memory`,
      );
    }
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

  /**
   * Generates one completion and returns its text (the stop string, if
   * one ended it, left out). `prompt` is text (the tokenizer must have
   * `encode`) or token ids; `params` are sampling parameters with the
   * OpenAI defaults filled in (temperature 1, max_tokens 16).
   *
   * @example Greedy text from the demo model on the reference backend
   * ```ts
   * import { loadEngine } from "./engine_load.ts";
   * import referenceBackend from "../backends/reference/mod.ts";
   * import assert from "node:assert/strict";
   *
   * const engine = await loadEngine(
   *   new URL("../models/demo-gemma2", import.meta.url).pathname,
   *   { backends: [referenceBackend], select: { kvCacheDtype: "fp8_e4m3" } },
   * );
   * const a = await engine.generate("A time to", { temperature: 0, maxTokens: 4 });
   * const b = await engine.generate("A time to", { temperature: 0, maxTokens: 4 });
   * assert.equal(a, b); // greedy is deterministic
   * assert.ok(a.length > 0);
   * await engine.shutdown();
   * ```
   */
  async generate(
    prompt: string | readonly number[],
    params: Partial<SamplingParams> = {},
  ): Promise<string> {
    return (await this.#request(prompt, params).result()).text;
  }

  /**
   * Like {@linkcode Engine.generate}, as text deltas while they are made.
   * Breaking out of the loop aborts the request and frees its blocks.
   *
   * @example Streaming
   * ```ts
   * import { loadEngine } from "./engine_load.ts";
   * import referenceBackend from "../backends/reference/mod.ts";
   * import assert from "node:assert/strict";
   *
   * const engine = await loadEngine(
   *   new URL("../models/demo-gemma2", import.meta.url).pathname,
   *   { backends: [referenceBackend] },
   * );
   * const params = { temperature: 0, maxTokens: 3, ignoreEos: true };
   * let text = "";
   * for await (const delta of engine.stream("To every", params)) text += delta;
   * assert.equal(text, await engine.generate("To every", params));
   * await engine.shutdown();
   * ```
   */
  async *stream(
    prompt: string | readonly number[],
    params: Partial<SamplingParams> = {},
  ): AsyncGenerator<string, RequestResult> {
    const stream = this.#request(prompt, params);
    try {
      for await (const delta of stream) if (delta.text) yield delta.text;
      return await stream.result();
    } finally {
      stream.abort();
    }
  }

  #request(
    prompt: string | readonly number[],
    params: Partial<SamplingParams>,
  ): RequestStream {
    let ids: readonly number[];
    if (typeof prompt === "string") {
      if (!this.#tokenizer.encode) {
        throw new TypeError(
          "The prompt is text but the engine's tokenizer has no encode(): pass token ids or a tokenizer with encode",
        );
      }
      ids = this.#tokenizer.encode(prompt);
    } else {
      ids = prompt;
    }
    return this.addRequest(ids, samplingParams(params));
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
    let logits: Float32Array;
    try {
      if (out.copies.length > 0) {
        for (const { backend, cache } of this.#attention) {
          try {
            await backend.copyBlocks(cache, out.copies);
          } catch (error) {
            throw attributeBackendError(error, {
              backend: backend.name,
              target: backend.target,
              layer: cache.config.index,
            });
          }
        }
      }
      const batch = this.#flatten(out.scheduled);
      logits = await this.#model.forward(batch, this.#attention);
    } catch (error) {
      // A failing backend fails the requests of this step (their blocks are
      // freed), not the server. The cause keeps the BackendError, so the
      // server reports the backend, target and layer (server/step_errors.ts).
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

  /**
   * Each layer's K/V scales: fixed from the start, or, with
   * calculateKvScales, undefined for scaled layers until the first prefill
   * measures them. 16/32-bit layers show scale 1.
   */
  get kvScales(): readonly (LayerKvScales | undefined)[] {
    return [...this.#scales];
  }

  /** Requests waiting or running. */
  get numRequests(): number {
    return this.#streams.size;
  }
}
