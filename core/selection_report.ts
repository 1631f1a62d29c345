/**
 * The selection plan as a table a person reads (`deno task select`, server
 * start-up).
 *
 * @module
 */

import { dtypeInfo } from "./dtype.ts";
import type { LayerConfig } from "./layer.ts";
import type { SelectionPlan } from "./selector.ts";

/**
 * KV bytes one token takes in one layer (K and V), per-token-head scales
 * included. Backends may pad their own layouts; this is the format's size.
 *
 * @example Usage
 * ```ts
 * import { kvBytesPerToken } from "./selection_report.ts";
 * import assert from "node:assert/strict";
 *
 * const layer = { index: 0, kind: "full", numQHeads: 32, numKvHeads: 8, headDim: 128, scale: 1, blockSize: 16 } as const;
 * assert.equal(kvBytesPerToken({ ...layer, kvDtype: "bf16" }), 4096);
 * assert.equal(kvBytesPerToken({ ...layer, kvDtype: "fp8_e4m3" }), 2048);
 * ```
 */
export function kvBytesPerToken(layer: LayerConfig): number {
  const codes = 2 * layer.numKvHeads * layer.headDim *
    dtypeInfo(layer.kvDtype).bytes;
  const scales =
    layer.kvDtype === "int8" && layer.int8Scheme === "per_token_head"
      ? 2 * layer.numKvHeads * 4
      : 0;
  return codes + scales;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) =>
    Math.max(...rows.map((r) => r[c].length))
  );
  const line = (r: string[]) =>
    r.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd();
  return [
    line(rows[0]),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.slice(1).map(line),
  ].join("\n");
}

/**
 * Formats a plan: one row per layer (backend, target, KV dtype, reason),
 * then the KV bytes per token against the model dtype, then the candidates
 * passed over and why (unless `verbose` is false).
 *
 * @example Usage
 * ```ts
 * import { formatSelectionPlan } from "./selection_report.ts";
 * import { selectBackends } from "./selector.ts";
 * import { parseModelConfig } from "./model_config.ts";
 * import referenceBackend from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const model = parseModelConfig({
 *   model_type: "llama", num_hidden_layers: 1, num_attention_heads: 2,
 *   hidden_size: 128, torch_dtype: "bfloat16",
 * });
 * const plan = selectBackends(model, [{
 *   definition: referenceBackend,
 *   availability: new Map([["reference", { available: true }]]),
 * }]);
 * assert.match(formatSelectionPlan(plan), /reference/);
 * ```
 */
export function formatSelectionPlan(
  plan: SelectionPlan,
  options: { verbose?: boolean } = {},
): string {
  const rows = [[
    "layer",
    "kind",
    "head_dim",
    "heads q/kv",
    "kv dtype",
    "backend",
    "target",
    "why this kv dtype",
    "why this backend",
  ]];
  for (const d of plan.decisions) {
    const l = d.layer;
    rows.push([
      String(l.index),
      l.kind === "sliding_window" ? `sliding(${l.slidingWindow})` : "full",
      String(l.headDim),
      `${l.numQHeads}/${l.numKvHeads}`,
      l.kvDtype === "int8" ? `int8/${l.int8Scheme}` : l.kvDtype,
      d.backend,
      d.target,
      d.kvReason,
      d.backendReason,
    ]);
  }
  const out = [
    `Attention plan for ${plan.model.name} (${plan.model.modelType}, ${plan.model.layers.length} layers, model dtype ${plan.model.dtype})`,
    "",
    table(rows),
  ];
  const perToken = plan.decisions.reduce(
    (sum, d) => sum + kvBytesPerToken(d.layer),
    0,
  );
  const baseline = plan.decisions.reduce(
    (sum, d) =>
      sum + kvBytesPerToken({ ...d.layer, kvDtype: plan.model.dtype }),
    0,
  );
  out.push(
    "",
    `KV cache per token: ${perToken} bytes (${
      (perToken / baseline).toFixed(3)
    }x of ${baseline} bytes in ${plan.model.dtype})`,
  );
  // Group identical reasons across layers: a 42-layer model would otherwise
  // repeat each line 42 times.
  const passed = new Map<string, number[]>();
  for (const d of plan.decisions) {
    for (const r of d.rejected) {
      const key = `${r.backend}/${r.target}: ${r.reasons.join("; ")}`;
      passed.set(key, [...(passed.get(key) ?? []), d.layer.index]);
    }
  }
  if (passed.size > 0 && options.verbose !== false) {
    out.push("", "Passed over:");
    for (const [key, layers] of passed) {
      out.push(`  ${key} (layers ${compactRanges(layers)})`);
    }
  }
  return out.join("\n");
}

/** "0-3, 5, 7-9" from sorted layer indices. */
function compactRanges(indices: readonly number[]): string {
  const step = indices[1] - indices[0];
  if (
    indices.length > 2 && step > 1 &&
    indices.every((v, i) => i === 0 || v - indices[i - 1] === step)
  ) {
    return `${indices[0]}-${indices.at(-1)} every ${step}`;
  }
  const parts: string[] = [];
  for (let i = 0; i < indices.length; i++) {
    let j = i;
    while (j + 1 < indices.length && indices[j + 1] === indices[j] + 1) j++;
    parts.push(i === j ? `${indices[i]}` : `${indices[i]}-${indices[j]}`);
    i = j;
  }
  return parts.join(", ");
}
