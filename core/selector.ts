/**
 * Per-layer backend selection. Rules are data, each decision carries its
 * reason, and a backend the user pinned is never silently replaced (vLLM v1's
 * selector contract).
 *
 * @module
 */

import { match, P } from "ts-pattern";
import type {
  Availability,
  BackendDefinition,
  BackendTarget,
  Target,
} from "./backend.ts";
import { TARGETS } from "./backend.ts";
import { unsupportedReasons } from "./capabilities.ts";
import type { Int8Scheme, KvCacheDtype, ModelDtype } from "./dtype.ts";
import type { LayerConfig, LayerSpec } from "./layer.ts";
import type { ModelSpec } from "./model_config.ts";
import type { ResolvedSettings } from "./settings.ts";
import { settingsForUses } from "./settings_plan.ts";

/** A backend definition with each of its targets probed on this machine. */
export interface ProbedBackend {
  /** The validated definition, as loaded from the registry. */
  readonly definition: BackendDefinition;
  /** Availability per target the definition ships. */
  readonly availability: ReadonlyMap<Target, Availability>;
}

/** `--kv-cache-dtype-skip-layers` entries: layer indices or a layer kind. */
export type SkipLayer = number | "sliding_window";

/** What the user asked for. */
export interface SelectOptions {
  /** `auto` stores the cache in the model dtype. @default "auto" */
  readonly kvCacheDtype?: KvCacheDtype | "auto";
  /** Scale granularity for int8 caches; ignored for other dtypes. @default "per_tensor" */
  readonly int8Scheme?: Int8Scheme;
  /** Tokens per cache block, the same for every layer. @default 16 */
  readonly blockSize?: number;
  /** Layers kept in the model dtype. @default [] */
  readonly skipLayers?: readonly SkipLayer[];
  /** Pin one backend (by name) for every layer. */
  readonly backend?: string;
  /**
   * Restrict every layer to one target; `auto` tries hardware targets first
   * and falls back to software ones. @default "auto"
   */
  readonly target?: Target | "auto";
  /**
   * Backend settings (`--backend-setting NAME=VALUE`), shared out to the
   * instances in use that declare them (core/settings_plan.ts); strings are
   * read by each setting's type. @default {}
   */
  readonly backendSettings?: Readonly<Record<string, unknown>>;
}

/** Why one backend/target was not chosen for a layer. */
export interface Rejection {
  /** The rejected backend's name. */
  readonly backend: string;
  /** The target of that backend that was tried. */
  readonly target: Target;
  /** Every reason it cannot serve the layer, each a sentence a user can act on. */
  readonly reasons: readonly string[];
}

/** The choice for one layer, with its reasons. */
export interface LayerDecision {
  /** The layer's spec with the cache dtype, int8 scheme and block size chosen. */
  readonly layer: LayerConfig;
  /** Name of the chosen backend. */
  readonly backend: string;
  /** The chosen backend's target that runs this layer. */
  readonly target: Target;
  /** Why the layer's kvDtype was chosen (`--kv-cache-dtype fp8_e4m3`, a skip rule). */
  readonly kvReason: string;
  /** Why this backend: pinned with `--backend`, or first in priority order that fits. */
  readonly backendReason: string;
  /** Candidates tried before the chosen one (or all, when none fit). */
  readonly rejected: readonly Rejection[];
}

/** The plan for a whole model. */
export interface SelectionPlan {
  /** The model the plan was made for. */
  readonly model: ModelSpec;
  /** One decision per layer, indexed like `model.layers`. */
  readonly decisions: readonly LayerDecision[];
  /**
   * (optional) Each instance's settings, checked and defaulted, keyed
   * `backend/target`. Absent: every default.
   */
  readonly settings?: Readonly<Record<string, ResolvedSettings>>;
}

/** No backend can serve a layer, or a pinned one cannot. */
export class SelectionError extends Error {
  /** Creates the error; pass `{ cause }` to keep the underlying error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SelectionError";
  }
}

interface KvContext {
  readonly requested: KvCacheDtype | "auto";
  readonly modelDtype: ModelDtype;
  readonly kind: LayerSpec["kind"];
  readonly index: number;
  readonly skippedByIndex: boolean;
  readonly skipSliding: boolean;
}

/** The KV-dtype rules, in order; the first that matches decides. */
function kvDtypeFor(c: KvContext): { dtype: KvCacheDtype; reason: string } {
  return match(c)
    .with({ requested: "auto" }, () => ({
      dtype: c.modelDtype,
      reason: `auto: the model dtype ${c.modelDtype}`,
    }))
    .with({ requested: c.modelDtype }, () => ({
      dtype: c.modelDtype,
      reason: `--kv-cache-dtype ${c.requested} (the model dtype)`,
    }))
    .with({ skippedByIndex: true }, () => ({
      dtype: c.modelDtype,
      reason:
        `kept in ${c.modelDtype}: layer ${c.index} is in --kv-cache-dtype-skip-layers`,
    }))
    .with({ kind: "sliding_window", skipSliding: true }, () => ({
      dtype: c.modelDtype,
      reason:
        `kept in ${c.modelDtype}: sliding-window layer, --kv-cache-dtype-skip-layers sliding_window`,
    }))
    .with({ requested: P.string }, ({ requested }) => ({
      dtype: requested as KvCacheDtype,
      reason: `--kv-cache-dtype ${requested}`,
    }))
    .exhaustive();
}

function candidateTargets(
  def: BackendDefinition,
  wanted: Target | "auto",
): BackendTarget[] {
  const order = wanted === "auto" ? TARGETS : [wanted];
  return order.flatMap((t) => def.targets.filter((x) => x.target === t));
}

/**
 * Which targets a selection pass considers: hardware only (native, WebGPU
 * on a real GPU); then the TypeScript reference too; then anything,
 * software WebGPU included (on llvmpipe, per-dispatch costs make it slower
 * than the reference at the context lengths served here).
 */
type TargetPass = "hardware" | "reference" | "any";

function rejectionsOf(
  probed: ProbedBackend,
  layer: LayerConfig,
  wanted: Target | "auto",
  pass: TargetPass = "any",
): { chosen?: BackendTarget; rejected: Rejection[] } {
  const rejected: Rejection[] = [];
  const targets = candidateTargets(probed.definition, wanted);
  if (targets.length === 0) {
    rejected.push({
      backend: probed.definition.name,
      target: wanted === "auto" ? "reference" : wanted,
      reasons: [
        `has no ${wanted} target (it ships ${
          probed.definition.targets.map((t) => t.target).join(", ")
        })`,
      ],
    });
  }
  for (const t of targets) {
    // The reference target (TypeScript, fp64) is not considered by the
    // hardware pass.
    if (pass === "hardware" && t.target === "reference") continue;
    const availability = probed.availability.get(t.target) ??
      { available: false, reason: "was not probed" };
    const reasons = [
      ...(availability.available ? [] : [availability.reason]),
      ...(availability.available && availability.software && pass !== "any"
        ? [
          `${
            availability.detail ?? "the target"
          } runs in software on the CPU: used only when no other target serves the layer, or with --target ${t.target}`,
        ]
        : []),
      ...unsupportedReasons(t.capabilities, layer),
      ...(t.extraReasons?.(layer) ?? []),
    ];
    if (reasons.length === 0) return { chosen: t, rejected };
    rejected.push({
      backend: probed.definition.name,
      target: t.target,
      reasons,
    });
  }
  return { rejected };
}

function formatRejections(rejected: readonly Rejection[]): string {
  return rejected.map((r) =>
    `${r.backend}/${r.target}: ${r.reasons.join("; ")}`
  )
    .join("\n  ");
}

/**
 * Chooses a backend and target for every layer of a model.
 *
 * @example Usage
 * ```ts
 * import { selectBackends } from "./selector.ts";
 * import { parseModelConfig } from "./model_config.ts";
 * import referenceBackend from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const model = parseModelConfig({
 *   model_type: "llama", num_hidden_layers: 2, num_attention_heads: 4,
 *   hidden_size: 256, torch_dtype: "bfloat16",
 * });
 * const plan = selectBackends(model, [{
 *   definition: referenceBackend,
 *   availability: new Map([["reference", { available: true }]]),
 * }], { kvCacheDtype: "fp8_e4m3" });
 * assert.equal(plan.decisions[1].backend, "reference");
 * assert.equal(plan.decisions[1].layer.kvDtype, "fp8_e4m3");
 * ```
 */
export function selectBackends(
  model: ModelSpec,
  backends: readonly ProbedBackend[],
  options: SelectOptions = {},
): SelectionPlan {
  const requested = options.kvCacheDtype ?? "auto";
  const skip = options.skipLayers ?? [];
  const wantedTarget = options.target ?? "auto";
  const blockSize = options.blockSize ?? 16;
  for (const s of skip) {
    if (s !== "sliding_window" && !(s >= 0 && s < model.layers.length)) {
      throw new SelectionError(
        `--kv-cache-dtype-skip-layers names layer ${s}, but ${model.name} has layers 0..${
          model.layers.length - 1
        }`,
      );
    }
  }
  let pool = backends.filter((b) => !b.definition.optIn);
  if (options.backend !== undefined) {
    pool = backends.filter((b) => b.definition.name === options.backend);
    if (pool.length === 0) {
      throw new SelectionError(
        `Backend "${options.backend}" was not loaded: load it through the registry first (known: ${
          backends.map((b) => b.definition.name).join(", ")
        })`,
      );
    }
  }
  const order = pool.map((b) => b.definition.name).join(" > ");

  const decisions = model.layers.map((spec): LayerDecision => {
    const kv = kvDtypeFor({
      requested,
      modelDtype: model.dtype,
      kind: spec.kind,
      index: spec.index,
      skippedByIndex: skip.includes(spec.index),
      skipSliding: skip.includes("sliding_window"),
    });
    const layer: LayerConfig = {
      ...spec,
      kvDtype: kv.dtype,
      blockSize,
      ...(kv.dtype === "int8"
        ? { int8Scheme: options.int8Scheme ?? "per_tensor" }
        : {}),
    };
    const rejected: Rejection[] = [];
    // Under --target auto, hardware targets first; software ones (a CPU
    // WebGPU adapter) only if nothing else serves the layer.
    const passes: TargetPass[] = wantedTarget === "auto"
      ? ["hardware", "reference", "any"]
      : ["any"];
    for (const pass of passes) {
      rejected.length = 0; // the last pass's reasons are the ones that stand
      for (const probed of pool) {
        const r = rejectionsOf(probed, layer, wantedTarget, pass);
        rejected.push(...r.rejected);
        if (r.chosen) {
          return {
            layer,
            backend: probed.definition.name,
            target: r.chosen.target,
            kvReason: kv.reason,
            backendReason: options.backend !== undefined
              ? `--backend ${options.backend}`
              : rejected.length === 0
              ? `first in priority order (${order})`
              : `first that serves it (${order})`,
            rejected,
          };
        }
      }
    }
    throw noBackendError(layer, rejected, backends, options, wantedTarget);
  });
  const uses = [
    ...new Map(decisions.map((d) => [`${d.backend}/${d.target}`, d])).values(),
  ].map((d) => ({
    definition: backends.find((b) => b.definition.name === d.backend)!
      .definition,
    target: d.target,
  }));
  const settings = settingsForUses(
    uses,
    options.backendSettings,
    backends.map((b) => b.definition),
  );
  return { model, decisions, settings };
}

function noBackendError(
  layer: LayerConfig,
  rejected: readonly Rejection[],
  all: readonly ProbedBackend[],
  options: SelectOptions,
  wantedTarget: Target | "auto",
): SelectionError {
  const what =
    `layer ${layer.index} (${layer.kind}, head_dim ${layer.headDim}, kv ${layer.kvDtype})`;
  if (options.backend === undefined) {
    return new SelectionError(
      `No attention backend can serve ${what}. Reasons:\n  ${
        formatRejections(rejected)
      }`,
    );
  }
  const could = all
    .filter((b) => b.definition.name !== options.backend)
    .flatMap((b) => {
      const r = rejectionsOf(b, layer, wantedTarget);
      return r.chosen ? [`${b.definition.name} (${r.chosen.target})`] : [];
    });
  return new SelectionError(
    `Backend ${options.backend} cannot serve ${what}:\n  ${
      formatRejections(rejected)
    }\nBackends that could: ${
      could.join(", ") || "none"
    }. Drop --backend, pick one of those, or change --kv-cache-dtype / --kv-cache-dtype-skip-layers`,
  );
}

/**
 * Probes every target of every definition (in parallel); a probe that throws
 * becomes an unavailable target with the error as its reason.
 *
 * @example Usage
 * ```ts
 * import { probeBackends } from "./selector.ts";
 * import referenceBackend from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const [probed] = await probeBackends([referenceBackend]);
 * assert.deepEqual(probed.availability.get("reference"), { available: true });
 * ```
 */
export function probeBackends(
  definitions: readonly BackendDefinition[],
): Promise<ProbedBackend[]> {
  return Promise.all(definitions.map(async (definition) => {
    const entries = await Promise.all(
      definition.targets.map(async (t): Promise<[Target, Availability]> => {
        try {
          return [t.target, await t.probe()];
        } catch (error) {
          return [t.target, {
            available: false,
            reason: `probe failed: ${(error as Error).message ?? error}`,
          }];
        }
      }),
    );
    return { definition, availability: new Map(entries) };
  }));
}
