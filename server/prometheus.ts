/**
 * The engine's state in Prometheus text format (GET /metrics), with names
 * in vLLM's spirit under a `kvplug_` prefix.
 *
 * @module
 */

import type { Engine } from "../engine/engine.ts";

const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const TPOT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

function histogram(
  name: string,
  help: string,
  samples: readonly number[],
  buckets: readonly number[],
): string[] {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
  for (const le of buckets) {
    lines.push(
      `${name}_bucket{le="${le}"} ${samples.filter((s) => s <= le).length}`,
    );
  }
  lines.push(`${name}_bucket{le="+Inf"} ${samples.length}`);
  lines.push(`${name}_sum ${samples.reduce((a, b) => a + b, 0)}`);
  lines.push(`${name}_count ${samples.length}`);
  return lines;
}

function metric(
  name: string,
  type: "gauge" | "counter",
  help: string,
  value: number,
): string[] {
  return [
    `# HELP ${name} ${help}`,
    `# TYPE ${name} ${type}`,
    `${name} ${value}`,
  ];
}

/**
 * Renders every metric.
 *
 * @example Usage
 * ```ts ignore
 * const text = renderMetrics(engine);
 * // kvplug_kv_blocks_free 512
 * ```
 */
export function renderMetrics(engine: Engine): string {
  const m = engine.metrics;
  const c = engine.cache;
  return [
    ...metric(
      "kvplug_requests_running",
      "gauge",
      "Requests in the running batch.",
      engine.scheduler.numRunning,
    ),
    ...metric(
      "kvplug_requests_waiting",
      "gauge",
      "Requests waiting for KV blocks or a batch slot.",
      engine.scheduler.numWaiting,
    ),
    ...metric(
      "kvplug_kv_blocks_used",
      "gauge",
      "KV cache blocks held by requests.",
      c.numUsedBlocks,
    ),
    ...metric(
      "kvplug_kv_blocks_free",
      "gauge",
      "KV cache blocks free.",
      c.numFreeBlocks,
    ),
    ...metric(
      "kvplug_kv_cache_usage_ratio",
      "gauge",
      "Fraction of KV cache blocks in use.",
      c.usage,
    ),
    ...metric(
      "kvplug_kv_block_bytes",
      "gauge",
      "Bytes of one block across all layers.",
      engine.bytesPerBlock,
    ),
    ...metric(
      "kvplug_preemptions_total",
      "counter",
      "Requests preempted (recomputed later) for lack of KV blocks.",
      m.preemptions,
    ),
    ...metric(
      "kvplug_prompt_tokens_total",
      "counter",
      "Prompt tokens received.",
      m.promptTokens,
    ),
    ...metric(
      "kvplug_generation_tokens_total",
      "counter",
      "Tokens generated.",
      m.generationTokens,
    ),
    ...metric(
      "kvplug_requests_finished_total",
      "counter",
      "Requests finished (any reason).",
      m.requestsFinished,
    ),
    ...histogram(
      "kvplug_time_to_first_token_seconds",
      "Time from arrival to first token.",
      m.ttft,
      TTFT_BUCKETS,
    ),
    ...histogram(
      "kvplug_time_per_output_token_seconds",
      "Time per output token after the first.",
      m.tpot,
      TPOT_BUCKETS,
    ),
  ].join("\n") + "\n";
}
