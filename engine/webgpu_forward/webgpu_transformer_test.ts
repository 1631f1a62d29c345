// The WebGPU forward pass end to end: models/demo-gemma2's logits against
// tools/train_tiny_model.py's reference file; the greedy continuation of a
// fixed prompt identical to the host forward pass's (every host ops target
// present) with fp16 and bf16 caches; small random models of every
// architecture against the TypeScript host forward on the same backend;
// and the refusal of a backend that is not device-resident. Worst errors
// and continuations are printed.
import assert from "node:assert/strict";
import type { AttentionBackend } from "../../core/backend.ts";
import type { KvCacheDtype } from "../../core/dtype.ts";
import { createReferenceBackend } from "../../backends/reference/mod.ts";
import { createFlashinferWebGpuBackend } from "../../backends/flashinfer/webgpu_backend.ts";
import { createXformersWebGpuBackend } from "../../backends/xformers/webgpu_backend.ts";
import { probeWebGpu } from "../../webgpu/mod.ts";
import { OPS_TARGETS } from "../model_ops.ts";
import { selectModelOps } from "../model_ops_select.ts";
import { Transformer } from "../transformer.ts";
import {
  backendCaches,
  maxRowRelativeError,
  randomModel,
  stepBatch,
  TINY_GEMMA2,
} from "../transformer_test_support.ts";
import { WebGpuTransformer } from "./webgpu_transformer.ts";

const DEMO = new URL("../../models/demo-gemma2", import.meta.url).pathname;
const probe = await probeWebGpu();
const noGpu = probe.available ? undefined : probe.reason;
const noDemo = await Deno.stat(`${DEMO}/reference_logits.json`)
  .then(() => undefined, () => "models/demo-gemma2 is missing");

function test(name: string, skip: string | undefined, fn: () => Promise<void>) {
  Deno.test({
    name: skip ? `${name} (ignored: ${skip})` : name,
    ignore: skip !== undefined,
    sanitizeResources: false,
    sanitizeOps: false,
    fn,
  });
}

test(
  "WebGpuTransformer matches models/demo-gemma2's reference logits within 1e-3",
  noGpu ?? noDemo,
  async () => {
    const host = await Transformer.load(DEMO, { ops: "typescript" });
    const model = await WebGpuTransformer.fromModel(host);
    const ref = JSON.parse(
      await Deno.readTextFile(`${DEMO}/reference_logits.json`),
    );
    const backend = await createFlashinferWebGpuBackend();
    try {
      const { manager, attention } = await backendCaches(host, backend);
      const batch = stepBatch(manager, [{ seq: 0, tokens: ref.token_ids }], {
        allRows: true,
      });
      const logits = await model.forward(batch, attention);
      const err = maxRowRelativeError(logits, ref.logits.flat(), 259);
      console.log(
        `webgpu forward (flashinfer, fp32 cache): max row relative error ${
          err.toExponential(3)
        } over ${ref.token_ids.length} rows`,
      );
      assert.ok(err <= 1e-3, `max row relative error ${err} > 1e-3`);
    } finally {
      backend.dispose();
      model.dispose();
    }
  },
);

const PROMPT = "In the beginning God created the heaven";
const NEW_TOKENS = 16;

/** Greedy tokens and, at each step, the gap between the top two logits. */
async function greedy(
  model: Pick<WebGpuTransformer, "forward">,
  host: Transformer,
  backend: AttentionBackend,
  kvDtype: KvCacheDtype,
): Promise<{ tokens: number[]; gaps: number[] }> {
  const { manager, attention } = await backendCaches(host, backend, {
    kvDtype,
  });
  let next = host.tokenizer!.encode(PROMPT);
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

function opsMissing(target: (typeof OPS_TARGETS)[number]): boolean {
  try {
    selectModelOps(target);
    return false;
  } catch {
    return true;
  }
}

test(
  `greedy decoding of models/demo-gemma2 (${NEW_TOKENS} tokens) is identical on the host ops targets and the WebGPU forward, fp16 and bf16 caches`,
  noGpu ?? noDemo,
  async () => {
    const backend = await createFlashinferWebGpuBackend();
    const runs: { name: string; tokens: number[]; gaps: number[] }[] = [];
    let gpu: WebGpuTransformer | undefined;
    try {
      for (const ops of OPS_TARGETS) {
        if (opsMissing(ops)) {
          console.log(`${ops} ops: skipped (not available here)`);
          continue;
        }
        const host = await Transformer.load(DEMO, { ops });
        gpu ??= await WebGpuTransformer.fromModel(host);
        for (const kvDtype of ["fp16", "bf16"] as const) {
          runs.push({
            name: `${ops} host forward, ${kvDtype}`,
            ...await greedy(host, host, backend, kvDtype),
          });
          if (ops === "typescript") {
            runs.push({
              name: `webgpu forward, ${kvDtype}`,
              ...await greedy(gpu, host, backend, kvDtype),
            });
          }
        }
      }
      const text = (ids: number[]) =>
        JSON.stringify(gpu!.tokenizer!.decode(ids));
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
      const minGap = Math.min(...runs.flatMap((r) => r.gaps));
      console.log(
        `${runs.length} runs (${
          runs.map((r) => r.name).join("; ")
        }), ${diverged.length} differ; smallest top-2 gap ${minGap.toFixed(4)}`,
      );
      assert.deepEqual(diverged, []);
    } finally {
      backend.dispose();
      gpu?.dispose();
    }
  },
);

const TINY = {
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  hidden_size: 32,
  intermediate_size: 40,
  vocab_size: 50,
};
/** Every architecture; xformers serves those without soft-cap, flashinfer the rest. */
const ARCHITECTURES: [string, Record<string, unknown>][] = [
  ["gemma2", { ...TINY_GEMMA2, head_dim: 64, query_pre_attn_scalar: 64 }],
  ["llama", {
    ...TINY,
    model_type: "llama",
    attention_bias: true,
    mlp_bias: true,
    rope_scaling: {
      rope_type: "llama3",
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 16,
    },
  }],
  ["qwen2", { ...TINY, model_type: "qwen2", tie_word_embeddings: true }],
  ["mistral", {
    ...TINY,
    model_type: "mistral",
    sliding_window: 3,
    head_dim: 16,
  }],
  ["gemma3_text", {
    ...TINY,
    model_type: "gemma3_text",
    head_dim: 8,
    sliding_window: 4,
    query_pre_attn_scalar: 8,
    layer_types: ["sliding_attention", "full_attention"],
    rope_scaling: { rope_type: "linear", factor: 4 },
  }],
];

for (const [arch, config] of ARCHITECTURES) {
  test(
    `WebGpuTransformer gives the TypeScript host forward's logits on a prefill then decode steps (${arch})`,
    noGpu,
    async () => {
      const host = randomModel(config);
      const gpu = await WebGpuTransformer.fromModel(host);
      const backend = arch === "gemma2"
        ? await createFlashinferWebGpuBackend()
        : await createXformersWebGpuBackend();
      try {
        const a = await backendCaches(host, backend, { blockSize: 16 });
        const b = await backendCaches(host, backend, { blockSize: 16 });
        // A prefill of 14 tokens (all rows), then 4 decode steps: past the
        // sliding windows and across a 16-token block boundary.
        const steps = [
          [1, 5, 9, 2, 7, 3, 30, 11, 4, 12, 33, 2, 2, 19],
          [8],
          [6],
          [0],
          [36],
        ];
        let worst = 0;
        for (const [i, tokens] of steps.entries()) {
          const rows = { allRows: i === 0 };
          const want = await host.forward(
            stepBatch(a.manager, [{ seq: 0, tokens }], rows),
            a.attention,
          );
          const got = await gpu.forward(
            stepBatch(b.manager, [{ seq: 0, tokens }], rows),
            b.attention,
          );
          assert.equal(got.length, want.length);
          worst = Math.max(
            worst,
            maxRowRelativeError(got, want, host.config.vocabSize),
          );
        }
        console.log(
          `${arch}: max row relative error ${worst.toExponential(3)}`,
        );
        assert.ok(worst <= 1e-4, `max row relative error ${worst} > 1e-4`);
      } finally {
        backend.dispose();
        gpu.dispose();
      }
    },
  );
}

test(
  "WebGpuTransformer refuses a layer whose backend is not device-resident, naming the layer and the backend",
  noGpu,
  async () => {
    const host = randomModel(TINY_GEMMA2);
    const gpu = await WebGpuTransformer.fromModel(host);
    const { manager, attention } = await backendCaches(
      host,
      createReferenceBackend(),
    );
    await assert.rejects(
      gpu.forward(stepBatch(manager, [{ seq: 0, tokens: [1, 2] }]), attention),
      /Layer 0's attention backend "reference" \(target reference\) is not device-resident/,
    );
    gpu.dispose();
  },
);
