import assert from "node:assert/strict";
import type { Availability, BackendDefinition, Target } from "./backend.ts";
import type { BackendCapabilities } from "./capabilities.ts";
import { parseModelConfig } from "./model_config.ts";
import {
  type ProbedBackend,
  selectBackends,
  SelectionError,
} from "./selector.ts";

const ALL_DTYPES = [
  "fp32",
  "fp16",
  "bf16",
  "fp8_e4m3",
  "fp8_e5m2",
  "int8",
] as const;

function caps(patch: Partial<BackendCapabilities> = {}): BackendCapabilities {
  return {
    kvDtypes: ALL_DTYPES,
    int8Schemes: ["per_tensor", "per_token_head"],
    headDims: { multipleOf: 8, min: 8, max: 256 },
    blockSizes: [16],
    layerKinds: ["full", "sliding_window"],
    softCap: true,
    lowPrecisionCompute: false,
    prefill: true,
    decode: true,
    mixedBatches: true,
    ...patch,
  };
}

function fake(
  name: string,
  targets: Partial<Record<Target, Availability>>,
  capabilities: BackendCapabilities = caps(),
  optIn = false,
): ProbedBackend {
  const definition: BackendDefinition = {
    apiVersion: 1,
    name,
    version: "0",
    description: name,
    optIn,
    targets: Object.keys(targets).map((t) => ({
      target: t as Target,
      capabilities,
      probe: () => targets[t as Target]!,
      create: () => {
        throw new Error("not in this test");
      },
    })),
  };
  return {
    definition,
    availability: new Map(Object.entries(targets)) as Map<Target, Availability>,
  };
}

const up = { available: true } as const;
const gemma = parseModelConfig({
  model_type: "gemma2",
  num_hidden_layers: 4,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  head_dim: 256,
  hidden_size: 2048,
  sliding_window: 4096,
  attn_logit_softcapping: 50,
  query_pre_attn_scalar: 256,
  torch_dtype: "bfloat16",
});
const llama72 = parseModelConfig({
  model_type: "llama",
  num_hidden_layers: 2,
  num_attention_heads: 8,
  head_dim: 72,
  hidden_size: 576,
  torch_dtype: "bfloat16",
});

const flashinfer = fake(
  "flashinfer",
  { native: up, webgpu: up },
  caps({ headDims: [64, 128, 256] }),
);
const xformers = fake("xformers", { native: up }, caps({ softCap: false }));
const reference = fake(
  "reference",
  { reference: up },
  caps({ headDims: { multipleOf: 1, min: 1, max: 1024 } }),
);

Deno.test("selectBackends() keeps sliding-window layers in bf16 when told to skip them", () => {
  const plan = selectBackends(gemma, [flashinfer, reference], {
    kvCacheDtype: "fp8_e4m3",
    skipLayers: ["sliding_window"],
  });
  for (const d of plan.decisions) {
    if (d.layer.kind === "sliding_window") {
      assert.equal(d.layer.kvDtype, "bf16");
      assert.match(
        d.kvReason,
        /kept in bf16: sliding-window layer, --kv-cache-dtype-skip-layers sliding_window/,
      );
    } else {
      assert.equal(d.layer.kvDtype, "fp8_e4m3");
      assert.equal(d.kvReason, "--kv-cache-dtype fp8_e4m3");
    }
  }
});

Deno.test("selectBackends() keeps listed layer indices in the model dtype", () => {
  const plan = selectBackends(gemma, [reference], {
    kvCacheDtype: "int8",
    skipLayers: [1, 2],
  });
  assert.deepEqual(plan.decisions.map((d) => d.layer.kvDtype), [
    "int8",
    "bf16",
    "bf16",
    "int8",
  ]);
  assert.match(
    plan.decisions[1].kvReason,
    /layer 1 is in --kv-cache-dtype-skip-layers/,
  );
  assert.equal(plan.decisions[0].layer.int8Scheme, "per_tensor");
});

Deno.test("selectBackends() walks the priority list and records why it passed over a backend", () => {
  const plan = selectBackends(llama72, [flashinfer, xformers, reference], {
    kvCacheDtype: "fp8_e5m2",
  });
  const d = plan.decisions[0];
  assert.equal(d.backend, "xformers");
  assert.equal(d.target, "native");
  assert.match(
    d.backendReason,
    /first that serves it \(flashinfer > xformers > reference\)/,
  );
  assert.deepEqual(d.rejected.map((r) => `${r.backend}/${r.target}`), [
    "flashinfer/native",
    "flashinfer/webgpu",
  ]);
  assert.match(
    d.rejected[0].reasons[0],
    /head_dim 72 is not supported \(supported: 64, 128, 256\)/,
  );
});

Deno.test("selectBackends() prefers native over webgpu under --target auto and obeys --target", () => {
  assert.equal(
    selectBackends(gemma, [flashinfer]).decisions[0].target,
    "native",
  );
  assert.equal(
    selectBackends(gemma, [flashinfer], { target: "webgpu" }).decisions[0]
      .target,
    "webgpu",
  );
});

Deno.test("selectBackends() passes over a target that is absent on this machine, with its reason", () => {
  const absent = fake("flashinfer", {
    native: {
      available: false,
      reason: "native addon not built: run deno task build:native",
    },
  }, caps({ headDims: [64, 128, 256] }));
  const d = selectBackends(gemma, [absent, reference]).decisions[0];
  assert.equal(d.backend, "reference");
  assert.deepEqual(d.rejected[0].reasons, [
    "native addon not built: run deno task build:native",
  ]);
});

Deno.test("selectBackends() never picks an opt-in backend unless asked for by name", () => {
  const fa3 = fake("fa3", { native: up }, caps(), true);
  assert.equal(
    selectBackends(gemma, [fa3, reference]).decisions[0].backend,
    "reference",
  );
  assert.equal(
    selectBackends(gemma, [fa3, reference], { backend: "fa3" }).decisions[0]
      .backend,
    "fa3",
  );
});

Deno.test("selectBackends() never silently replaces a pinned backend: it names the layer, the reason and who could", () => {
  assert.throws(
    () =>
      selectBackends(llama72, [flashinfer, xformers, reference], {
        backend: "flashinfer",
      }),
    (e: Error) => {
      assert.ok(e instanceof SelectionError);
      assert.match(
        e.message,
        /^Backend flashinfer cannot serve layer 0 \(full, head_dim 72, kv bf16\)/,
      );
      assert.match(
        e.message,
        /flashinfer\/native: head_dim 72 is not supported/,
      );
      assert.match(
        e.message,
        /Backends that could: xformers \(native\), reference \(reference\)/,
      );
      return true;
    },
  );
});

Deno.test("selectBackends() lists every backend's reasons when none can serve a layer", () => {
  assert.throws(
    () => selectBackends(gemma, [xformers], { kvCacheDtype: "fp8_e4m3" }),
    /No attention backend can serve layer 0 \(sliding_window, head_dim 256, kv fp8_e4m3\)\. Reasons:\n {2}xformers\/native: logit soft-cap \(50\) is not supported/,
  );
});

Deno.test("selectBackends() rejects a skip-layer index the model does not have", () => {
  assert.throws(
    () => selectBackends(gemma, [reference], { skipLayers: [9] }),
    /names layer 9, but .* has layers 0\.\.3/,
  );
});

Deno.test("selectBackends() rejects a pinned backend that was never loaded", () => {
  assert.throws(
    () => selectBackends(gemma, [reference], { backend: "mine" }),
    /Backend "mine" was not loaded/,
  );
});

Deno.test("selectBackends() under --target auto prefers hardware, then the reference, then a software WebGPU adapter", () => {
  const soft = {
    available: true,
    software: true,
    detail: 'WebGPU adapter "llvmpipe"',
  } as const;
  const gpuOnly = fake(
    "flashinfer",
    { webgpu: soft },
    caps({ headDims: [64, 128, 256] }),
  );
  const cpu = fake("xformers", { native: up }, caps());
  const auto = selectBackends(gemma, [gpuOnly, cpu]).decisions[1];
  assert.equal(`${auto.backend}/${auto.target}`, "xformers/native");
  assert.match(
    auto.rejected[0].reasons[0],
    /llvmpipe" runs in software on the CPU: used only when no other target serves the layer, or with --target webgpu/,
  );
  // Asked for explicitly, or with nothing else available, software serves.
  assert.equal(
    selectBackends(gemma, [gpuOnly, cpu], { target: "webgpu" }).decisions[1]
      .target,
    "webgpu",
  );
  assert.equal(
    selectBackends(gemma, [gpuOnly, cpu], { backend: "flashinfer" })
      .decisions[1].target,
    "webgpu",
  );
  // The TypeScript reference comes before software WebGPU.
  assert.equal(
    selectBackends(gemma, [gpuOnly, reference]).decisions[1].backend,
    "reference",
  );
  const alone = selectBackends(gemma, [gpuOnly]).decisions[1];
  assert.equal(alone.target, "webgpu");
  assert.deepEqual(alone.rejected, []);
});
