// The forward pass on every ops target present (typescript, the fp64
// oracle; native, the Rust matmul): models/demo-gemma2's logits against
// tools/train_tiny_model.py's reference file, and the greedy continuation
// of a fixed prompt across ops targets x attention backends (reference,
// xformers native, flashinfer webgpu) x KV dtypes fp16 and bf16. The
// worst relative error and each continuation are printed.
import assert from "node:assert/strict";
import type { AttentionBackend, BackendTarget } from "../core/backend.ts";
import type { KvCacheDtype } from "../core/dtype.ts";
import { createReferenceBackend } from "../backends/reference/mod.ts";
import { XFORMERS_NATIVE_TARGET } from "../backends/xformers/mod.ts";
import {
  FLASHINFER_NATIVE_TARGET,
  FLASHINFER_WEBGPU_TARGET,
} from "../backends/flashinfer/mod.ts";
import { unsupportedReasons } from "../core/capabilities.ts";
import { loadSafetensors } from "./load_safetensors.ts";
import { ModelTokenizer } from "./tokenizer.ts";
import { OPS_TARGETS, type OpsTarget } from "./model_ops.ts";
import { selectModelOps } from "./model_ops_select.ts";
import { Transformer } from "./transformer.ts";
import {
  backendCaches,
  maxRowRelativeError,
  stepBatch,
} from "./transformer_test_support.ts";

const DEMO = new URL("../models/demo-gemma2", import.meta.url).pathname;
const demoMissing = await Deno.stat(`${DEMO}/reference_logits.json`)
  .then(() => undefined, () => "models/demo-gemma2 is missing");

function opsMissing(target: OpsTarget): string | undefined {
  try {
    selectModelOps(target);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

function test(name: string, skip: string | undefined, fn: () => Promise<void>) {
  Deno.test({
    name: skip ? `${name} (ignored: ${skip})` : name,
    ignore: skip !== undefined,
    sanitizeResources: false,
    sanitizeOps: false,
    fn,
  });
}

for (const target of OPS_TARGETS) {
  test(
    `forward() on the ${target} ops target matches models/demo-gemma2's reference logits within 1e-3`,
    demoMissing ?? opsMissing(target),
    async () => {
      const model = await Transformer.load(DEMO, { ops: target });
      assert.equal(model.ops.target, target);
      const ref = JSON.parse(
        await Deno.readTextFile(`${DEMO}/reference_logits.json`),
      );
      const { manager, attention } = await backendCaches(
        model,
        createReferenceBackend(),
      );
      const batch = stepBatch(manager, [{ seq: 0, tokens: ref.token_ids }], {
        allRows: true,
      });
      const logits = await model.forward(batch, attention);
      const v = model.config.vocabSize;
      const err = maxRowRelativeError(logits, ref.logits.flat(), v);
      console.log(
        `ops ${target}: max row relative error ${err.toExponential(3)}`,
      );
      assert.ok(err <= 1e-3, `max row relative error ${err} > 1e-3`);
    },
  );
}

const PROMPT = "In the beginning God created the heaven";
const NEW_TOKENS = 24;

/** Greedy tokens, and at each step the gap between the top two logits. */
async function greedy(
  model: Transformer,
  backend: AttentionBackend,
  kvDtype: KvCacheDtype,
): Promise<{ tokens: number[]; gaps: number[] }> {
  const { manager, attention } = await backendCaches(model, backend, {
    kvDtype,
  });
  let next = model.tokenizer!.encode(PROMPT);
  const tokens: number[] = [], gaps: number[] = [];
  for (let i = 0; i < NEW_TOKENS; i++) {
    const logits = await model.forward(
      stepBatch(manager, [{ seq: 0, tokens: next }]),
      attention,
    );
    let best = 0, second = -Infinity;
    for (let j = 1; j < logits.length; j++) {
      if (logits[j] > logits[best]) {
        second = logits[best];
        best = j;
      } else if (logits[j] > second) second = logits[j];
    }
    tokens.push(best);
    gaps.push(logits[best] - second);
    next = [best];
  }
  return { tokens, gaps };
}

const ATTENTION: { name: string; target?: BackendTarget }[] = [
  { name: "reference" },
  { name: "xformers/native", target: XFORMERS_NATIVE_TARGET },
  { name: "flashinfer/native", target: FLASHINFER_NATIVE_TARGET },
  { name: "flashinfer/webgpu", target: FLASHINFER_WEBGPU_TARGET },
];

/** Why a backend cannot run this model, or undefined when it can. */
async function cannotRun(
  model: Transformer,
  target: BackendTarget | undefined,
): Promise<string | undefined> {
  if (!target) return undefined;
  const probe = await target.probe();
  if (!probe.available) return probe.reason;
  const reasons = model.modelSpec.layers.flatMap((spec) =>
    (["fp16", "bf16"] as const).flatMap((kvDtype) =>
      unsupportedReasons(target.capabilities, {
        ...spec,
        kvDtype,
        blockSize: 16,
      })
    )
  );
  return reasons.length ? [...new Set(reasons)].join("; ") : undefined;
}

/**
 * The demo model as trained, and with its attention soft-cap removed (same
 * weights, a different model) so backends without soft-cap (xformers, as
 * in vLLM) can be compared too.
 */
const VARIANTS = [
  { name: "demo-gemma2", config: {} },
  {
    name: "demo-gemma2 without attention soft-cap",
    config: { attn_logit_softcapping: null },
  },
];

async function loadVariant(
  config: Record<string, unknown>,
  ops: OpsTarget,
): Promise<Transformer> {
  const base = JSON.parse(await Deno.readTextFile(`${DEMO}/config.json`));
  const tensors = await loadSafetensors(DEMO);
  return new Transformer({
    config: { ...base, ...config },
    tensors,
    tokenizer: await ModelTokenizer.load(DEMO),
    source: DEMO,
  }, { ops });
}

for (const variant of VARIANTS) {
  test(
    `greedy decoding of ${variant.name} is identical across ops targets, attention backends and fp16/bf16 caches`,
    demoMissing,
    async () => {
      const runs: { name: string; tokens: number[]; gaps: number[] }[] = [];
      let text = (ids: number[]) => String(ids);
      for (const ops of OPS_TARGETS.filter((t) => !opsMissing(t))) {
        const model = await loadVariant(variant.config, ops);
        text = (ids) => JSON.stringify(model.tokenizer!.decode(ids));
        for (const { name, target } of ATTENTION) {
          const why = await cannotRun(model, target);
          if (why) {
            console.log(`${ops} ops, ${name}: skipped: ${why}`);
            continue;
          }
          const backend = target
            ? await target.create()
            : createReferenceBackend();
          try {
            for (const kvDtype of ["fp16", "bf16"] as const) {
              const run = await greedy(model, backend, kvDtype);
              runs.push({ name: `${ops} ops, ${name}, ${kvDtype}`, ...run });
            }
          } finally {
            await backend.dispose();
          }
        }
      }
      const [base] = runs;
      console.log(`${base.name}: ${text(base.tokens)}`);
      const diverged: string[] = [];
      for (const run of runs.slice(1)) {
        const at = run.tokens.findIndex((t, i) => t !== base.tokens[i]);
        if (at < 0) continue;
        diverged.push(
          `${run.name}: first differs at new token ${at} (${
            run.tokens[at]
          } vs ${base.tokens[at]}; top-2 gaps ${run.gaps[at].toFixed(4)} vs ${
            base.gaps[at].toFixed(4)
          }): ${text(run.tokens)}`,
        );
      }
      console.log(
        `${runs.length} runs (${
          runs.map((r) => r.name).join("; ")
        }), ${diverged.length} differ from the first`,
      );
      assert.deepEqual(diverged, []);
    },
  );
}
