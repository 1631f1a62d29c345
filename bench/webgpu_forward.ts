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
 * Run: `deno task bench forward [--tokens N]` (default 32 decode steps).
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { AttentionBackend } from "../core/backend.ts";
import { createReferenceBackend } from "../backends/reference/mod.ts";
import { createFlashinferWebGpuBackend } from "../backends/flashinfer/webgpu_backend.ts";
import { sharedWebGpuDevice } from "../webgpu/mod.ts";
import { OPS_TARGETS } from "../engine/model_ops.ts";
import { selectModelOps } from "../engine/model_ops_select.ts";
import { Transformer } from "../engine/transformer.ts";
import {
  backendCaches,
  stepBatch,
} from "../engine/transformer_test_support.ts";
import { WebGpuTransformer } from "../engine/webgpu_forward/webgpu_transformer.ts";

const DEMO = new URL("../models/demo-gemma2", import.meta.url).pathname;
const PROMPT = "In the beginning God created the heaven";

async function generate(
  newTokens: number,
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
  for (let i = 0; i <= newTokens; i++) {
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
    tokensPerSecond: newTokens / seconds,
    text: JSON.stringify(host.tokenizer!.decode(out)),
  };
}

/** Parses `--tokens N`, runs the benchmark, returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let tokens: string;
  try {
    tokens = parseArgs({
      args,
      options: { tokens: { type: "string", default: "32" } },
      strict: true,
      allowPositionals: false,
    }).values.tokens;
  } catch (e) {
    console.error(`error: ${(e as Error).message}: use --tokens N`);
    return 2;
  }
  const newTokens = Number(tokens);
  if (!Number.isInteger(newTokens) || newTokens < 1) {
    console.error(
      `error: --tokens: "${tokens}" is not a positive integer number of decode steps`,
    );
    return 2;
  }
  const info = await sharedWebGpuDevice();
  console.log(
    `models/demo-gemma2, greedy, fp16 cache, ${newTokens} decode steps; WebGPU adapter: ${info.adapterName}; load average ${
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
      const r = await generate(newTokens, host, host, backend);
      rows.push([
        `host forward, ${ops} ops, ${name}`,
        r.tokensPerSecond,
        r.text,
      ]);
    }
    if (ops === "typescript") {
      const gpu = await WebGpuTransformer.fromModel(host);
      const r = await generate(newTokens, gpu, host, flashinfer);
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
  return 0;
}
