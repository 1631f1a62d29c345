/**
 * `deno task serve`: load a model, select a backend per layer, size the KV
 * pool, and serve the OpenAI API until SIGINT/SIGTERM, then stop accepting,
 * give in-flight requests a bounded time, abort the rest and exit 0.
 *
 * @module
 */

import { loadModelConfig } from "../core/model_config.ts";
import { formatSelectionPlan } from "../core/selection_report.ts";
import { Engine } from "../engine/engine.ts";
import {
  checkKvScaleOptions,
  loadKvQuantParams,
  usesLayerScales,
} from "../engine/engine_kv_scales.ts";
import { loadModelOn } from "../engine/model_loader.ts";
import type { SelectionPlan, SelectOptions } from "../core/selector.ts";
import { planSpec } from "./plan_model.ts";
import { createApp, type ServerTokenizer } from "./app.ts";
import type { ServeOptions } from "./serve_options.ts";

/** A running server. */
export interface RunningServer {
  /** The base URL it listens on, e.g. `http://127.0.0.1:8000` (the API is under `/v1`). */
  readonly url: string;
  /** The engine behind it (for metrics, or a test's direct requests). */
  readonly engine: Engine;
  /** Graceful stop: no new connections, in-flight requests get `timeout` seconds. */
  stop(): Promise<void>;
}

/** Starts serving; prints the plan, the KV pool and the URL through `print`. */
export async function startServer(
  modelDir: string,
  select: SelectOptions,
  o: ServeOptions,
  print: (line: string) => void = console.log,
): Promise<RunningServer> {
  // The WebGPU forward keeps every layer's activations on the GPU, so every
  // layer's attention must be a WebGPU backend too.
  if (o.opsTarget === "webgpu") {
    if (
      select.target !== undefined && select.target !== "auto" &&
      select.target !== "webgpu"
    ) {
      throw new Error(
        `--ops-target webgpu runs the whole decode step on the GPU, so attention must run there too, but --target is ${select.target}: drop --target or pass --target webgpu`,
      );
    }
    if (o.calculateKvScales) {
      throw new Error(
        "--calculate-kv-scales measures scales from host-side K/V, which --ops-target webgpu never has: use --kv-quant-params-path FILE (docs/CALIBRATION.md)",
      );
    }
    select = { ...select, target: "webgpu" };
  }
  // Plan from config.json first: a bad --backend fails before the weights load.
  const { plan, definitions } = await planSpec(
    await loadModelConfig(modelDir),
    select,
  );
  // Then the scale flags and the calibration file, also before the weights.
  checkKvScaleOptions(plan, o);
  const calibration = o.kvQuantParamsPath !== undefined
    ? await loadKvQuantParams(o.kvQuantParamsPath, plan, o)
    : undefined;
  const model = await loadModelOn(modelDir, o.opsTarget);
  const tokenizer = model.tokenizer!;
  const raw = JSON.parse(await Deno.readTextFile(`${modelDir}/config.json`));
  const maxModelLen = o.maxModelLen ??
    Number(raw.max_position_embeddings ?? 2048);
  const engine = await Engine.create({
    model: {
      vocabSize: model.vocabSize,
      forward: (b, a) => model.forward(b, a),
    },
    tokenizer,
    plan,
    backends: definitions,
    kvCacheMemory: o.kvCacheMemory,
    ...(calibration ? { calibration } : {}),
    maxModelLen,
    maxNumSeqs: o.maxNumSeqs,
    maxNumBatchedTokens: o.maxNumBatchedTokens,
    schedulingPolicy: o.schedulingPolicy,
    calculateKvScales: o.calculateKvScales,
  });
  const serverTokenizer: ServerTokenizer = {
    encode: (text) => tokenizer.encode(text),
    encodeChat: (messages) => tokenizer.encodeChat(messages),
    decode: (ids) => tokenizer.decode(ids),
    eosTokenIds: tokenizer.eosTokenIds,
  };
  const modelName = o.servedModelName ??
    modelDir.replace(/\/+$/, "").split("/").at(-1)!;
  const app = createApp({ engine, tokenizer: serverTokenizer, modelName });
  print(formatSelectionPlan(plan, { verbose: false }));
  const c = engine.cache;
  print(
    `\nKV pool: ${c.numBlocks} blocks of ${c.blockSize} tokens = ${
      c.numBlocks * c.blockSize
    } tokens, ${engine.bytesPerBlock} bytes per block, ${
      (c.numBlocks * engine.bytesPerBlock / 2 ** 20).toFixed(1)
    } MiB of --kv-cache-memory ${(o.kvCacheMemory / 2 ** 20).toFixed(1)} MiB`,
  );
  const server = Deno.serve({
    hostname: o.host,
    port: o.port,
    onListen: () => {},
  }, app);
  const url = `http://${o.host}:${server.addr.port}`;
  print(
    `Scheduling: ${o.schedulingPolicy}; KV scales: ${
      scaleSource(o, plan)
    }; ops: ${model.opsReason}`,
  );
  print(
    `Serving "${modelName}" (max ${maxModelLen} tokens) on ${url}/v1  (POST /v1/completions, /v1/chat/completions; GET /v1/models, /health, /metrics)`,
  );
  let stopping: Promise<void> | undefined;
  const stop = async () => {
    // Stop accepting; in-flight responses finish on their own, or are
    // aborted (blocks freed, streams ended) when the timeout runs out.
    const drained = server.shutdown();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((r) =>
      timer = setTimeout(r, o.shutdownTimeout * 1000)
    );
    await Promise.race([drained, timeout]);
    clearTimeout(timer);
    await engine.shutdown();
    await drained;
  };
  return { url, engine, stop: () => stopping ??= stop() };
}

function scaleSource(o: ServeOptions, plan: SelectionPlan): string {
  if (!plan.decisions.some((d) => usesLayerScales(d.layer))) {
    return "none (no layer is stored with per-layer scales)";
  }
  if (o.kvQuantParamsPath !== undefined) {
    return `from ${o.kvQuantParamsPath} (--kv-quant-params-path)`;
  }
  if (o.calculateKvScales) {
    return "measured on the first prefill, then fixed (--calculate-kv-scales)";
  }
  return "1.0 (no --kv-quant-params-path or --calculate-kv-scales)";
}
