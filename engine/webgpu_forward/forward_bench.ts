/**
 * Greedy generation speed of models/demo-gemma2, printed as figures (no
 * assertions): the host forward pass (typescript ops; native too when the
 * addon is built) with reference attention and with flashinfer's WebGPU
 * attention through its host write/attend, against the WebGPU forward pass
 * (flashinfer WebGPU, recorded on the device, one read-back per step).
 * fp16 cache, one sequence, decode steps only (the prefill is untimed).
 *
 * On Mesa llvmpipe the "GPU" is the same CPU cores: these figures say what
 * one read-back per step saves there, not what a GPU would do.
 *
 * Run: `deno run -A engine/webgpu_forward/forward_bench.ts [newTokens]`.
 *
 * @module
 */

import type { AttentionBackend } from "../../core/backend.ts";
import { createReferenceBackend } from "../../backends/reference/mod.ts";
import { createFlashinferWebGpuBackend } from "../../backends/flashinfer/webgpu_backend.ts";
import { sharedWebGpuDevice } from "../../webgpu/mod.ts";
import { OPS_TARGETS } from "../model_ops.ts";
import { selectModelOps } from "../model_ops_select.ts";
import { Transformer } from "../transformer.ts";
import { backendCaches, stepBatch } from "../transformer_test_support.ts";
import { WebGpuTransformer } from "./webgpu_transformer.ts";

const DEMO = new URL("../../models/demo-gemma2", import.meta.url).pathname;
const NEW_TOKENS = Number(Deno.args[0] ?? 32);
const PROMPT = "In the beginning God created the heaven";

async function generate(
  model: Pick<WebGpuTransformer, "forward">,
  host: Transformer,
  backend: AttentionBackend,
): Promise<{ tokensPerSecond: number; text: string }> {
  const { manager, attention } = await backendCaches(host, backend, {
    kvDtype: "fp16",
  });
  let next = host.tokenizer!.encode(PROMPT);
  const out: number[] = [];
  let start = 0;
  for (let i = 0; i <= NEW_TOKENS; i++) {
    if (i === 1) start = performance.now(); // after the prefill
    const logits = await model.forward(
      stepBatch(manager, [{ seq: 0, tokens: next }]),
      attention,
    );
    let best = 0;
    for (let j = 1; j < logits.length; j++) {
      if (logits[j] > logits[best]) best = j;
    }
    out.push(best);
    next = [best];
  }
  const seconds = (performance.now() - start) / 1000;
  return {
    tokensPerSecond: NEW_TOKENS / seconds,
    text: JSON.stringify(host.tokenizer!.decode(out)),
  };
}

const info = await sharedWebGpuDevice();
console.log(
  `models/demo-gemma2, greedy, fp16 cache, ${NEW_TOKENS} decode steps; WebGPU adapter: ${info.adapterName}; load average ${
    Deno.loadavg().map((x) => x.toFixed(2)).join(" ")
  }`,
);
const rows: [string, number, string][] = [];
const flashinfer = await createFlashinferWebGpuBackend();
for (const ops of OPS_TARGETS) {
  try {
    selectModelOps(ops);
  } catch (e) {
    console.log(`${ops} ops: skipped: ${(e as Error).message}`);
    continue;
  }
  const host = await Transformer.load(DEMO, { ops });
  for (
    const [name, backend] of [
      ["reference", createReferenceBackend()],
      ["flashinfer webgpu (host write/attend)", flashinfer],
    ] as const
  ) {
    const r = await generate(host, host, backend);
    rows.push([`host forward, ${ops} ops, ${name}`, r.tokensPerSecond, r.text]);
  }
  if (ops === "typescript") {
    const gpu = await WebGpuTransformer.fromModel(host);
    const r = await generate(gpu, host, flashinfer);
    rows.push([
      "webgpu forward, flashinfer webgpu (encodeWrite/encodeAttend)",
      r.tokensPerSecond,
      r.text,
    ]);
    gpu.dispose();
  }
}
flashinfer.dispose();
for (const [name, tps, text] of rows) {
  console.log(
    `${name.padEnd(64)} ${tps.toFixed(1).padStart(8)} tokens/s  ${text}`,
  );
}
