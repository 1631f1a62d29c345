import assert from "node:assert/strict";
import referenceBackend from "../backends/reference/mod.ts";
import type { KvCacheDtype } from "../core/dtype.ts";
import { selectBackends } from "../core/selector.ts";
import {
  randomModel,
  TINY_GEMMA2,
} from "../engine/transformer_test_support.ts";
import { UsageError } from "../tools/cli_options.ts";
import type { DatasetShape } from "./datasets.ts";
import type { MachineInfo } from "./machine.ts";
import {
  type BenchEngineOptions,
  parseServeBenchArgs,
  shapeFor,
} from "./serve_options.ts";
import { writeServeReport } from "./serve_report.ts";
import { runServe, type ServeModel, type ServeResult } from "./serve_run.ts";

const transformer = randomModel({ ...TINY_GEMMA2 }, 3);
const MODEL: ServeModel = {
  spec: transformer.modelSpec,
  vocabSize: transformer.config.vocabSize,
  maxModelLen: 64,
  tokenizer: { decode: (ids) => ids.join(","), eosTokenIds: [0] },
  forward: (batch, attention) => transformer.forward(batch, attention),
};

const SHAPE: DatasetShape = {
  name: "decode-heavy",
  inputLen: 5,
  outputLen: 4,
  numRequests: 3,
  maxBatch: 2,
};

async function run(
  kvCacheDtype: KvCacheDtype,
  o: {
    kvCacheMemory?: number;
    dataset?: DatasetShape;
    engine?: BenchEngineOptions;
    int8Scheme?: "per_tensor" | "per_token_head";
  } = {},
): Promise<ServeResult> {
  const plan = selectBackends(MODEL.spec, [{
    definition: referenceBackend,
    availability: new Map([["reference", { available: true }]]),
  }], {
    kvCacheDtype,
    int8Scheme: o.int8Scheme ?? "per_token_head",
    blockSize: 4,
  });
  return await runServe(MODEL, {
    label: kvCacheDtype,
    dataset: o.dataset ?? SHAPE,
    plan,
    definitions: [referenceBackend],
    kvCacheMemory: o.kvCacheMemory ?? 1 << 20,
    seed: 1,
    warn: () => {},
    ...(o.engine ? { engine: o.engine } : {}),
  });
}

const MACHINE: MachineInfo = {
  cpu: "test cpu",
  cores: 2,
  loadAverage: "0.1",
  deno: Deno.version.deno,
  os: "linux x86_64",
  commit: "abc1234",
  dirty: false,
  date: "2025-01-01T00:00:00Z",
};

/** Every opened tag is closed, in order, and no bare & is left. */
function assertWellFormedSvg(svg: string): void {
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.doesNotMatch(svg, /&(?!(lt|gt|amp|quot|apos);)/);
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-z]+)\b[^>]*?(\/?)>/g)) {
    if (m[3] === "/") continue;
    if (m[1] === "/") assert.equal(stack.pop(), m[2], `unbalanced </${m[2]}>`);
    else stack.push(m[2]);
  }
  assert.deepEqual(stack, []);
}

Deno.test("runServe() runs every request to its exact output length and counts the tokens", async () => {
  for (const dtype of ["bf16", "fp8_e4m3", "int8"] as const) {
    const r = await run(dtype);
    assert.equal(r.requests, 3);
    assert.equal(r.promptTokens, 15);
    assert.equal(r.outputTokens, 12);
    assert.equal(r.preemptions, 0);
    assert.equal(r.recomputedTokens, 0);
    // Every token but each request's last output is run once: 3 * (5 + 4 - 1).
    assert.equal(r.forwardTokens, 24);
    assert.ok(r.maxBatch <= SHAPE.maxBatch, `batch ${r.maxBatch} > 2`);
    assert.equal(r.pool.bytes, r.pool.blocks * r.pool.bytesPerBlock);
    assert.equal(r.pool.tokens, r.pool.blocks * 4);
    assert.ok(r.ttftS.p50 > 0 && r.ttftS.p50 <= r.ttftS.p99);
    assert.ok(r.outputTps > 0 && r.totalTps > r.outputTps);
    assert.ok(r.attentionS > 0 && r.attentionS < r.forwardS);
    assert.ok(r.cpuS >= 0, `cpu ${r.cpuS}`);
    assert.match(r.kvDtypes, new RegExp(`^${dtype} x2$`));
  }
});

Deno.test("runServe() counts preemptions and recomputed tokens when the pool is short", async () => {
  // 3 blocks of 4 tokens: all three 3-token prompts are admitted (a block
  // each), then each needs a second block to grow to 8 tokens.
  const bytesPerBlock = 2 * 4 * 2 * 8 * 2 * 2; // K+V, 4 tokens, 2 heads x 8, bf16, 2 layers
  const dataset = { ...SHAPE, inputLen: 3, outputLen: 6, maxBatch: 3 };
  const r = await run("bf16", { kvCacheMemory: 3 * bytesPerBlock, dataset });
  assert.equal(r.pool.blocks, 3);
  assert.equal(r.outputTokens, 18);
  assert.ok(r.preemptions > 0, "expected preemptions");
  assert.ok(r.recomputedTokens > 0, "expected recomputation");
});

Deno.test("runServe() under guaranteed_no_evict runs the short pool with zero preemptions", async () => {
  const bytesPerBlock = 2 * 4 * 2 * 8 * 2 * 2;
  const dataset = { ...SHAPE, inputLen: 3, outputLen: 6, maxBatch: 3 };
  const r = await run("bf16", {
    kvCacheMemory: 3 * bytesPerBlock,
    dataset,
    engine: {
      schedulingPolicy: "guaranteed_no_evict",
      calculateKvScales: false,
    },
  });
  assert.equal(r.outputTokens, 18);
  assert.equal(r.preemptions, 0);
  assert.equal(r.recomputedTokens, 0);
  // Each request reserves 2 of the 3 blocks: one runs at a time.
  assert.equal(r.maxBatch, 1);
});

Deno.test("runServe() applies --calculate-kv-scales to configurations with layer scales only", async () => {
  const engine = {
    schedulingPolicy: "max_utilization",
    calculateKvScales: true,
  } as const;
  // Per-tensor int8 has no default scale: it runs only because the first
  // prefill measures one; bf16 has none to measure and runs unchanged.
  const int8 = await run("int8", { engine, int8Scheme: "per_tensor" });
  assert.equal(int8.outputTokens, 12);
  await assert.rejects(
    run("int8", { int8Scheme: "per_tensor" }),
    /Layer 0 has a per-tensor int8 KV cache but no scales: .*pass --kv-quant-params-path FILE .*--calculate-kv-scales/,
  );
  assert.equal((await run("bf16", { engine })).outputTokens, 12);
});

Deno.test("runServe() refuses a pool that cannot hold one request", async () => {
  await assert.rejects(
    () => run("fp32", { kvCacheMemory: 1024 }), // one block of 4 fp32 tokens
    /one request needs 2 KV blocks but the pool has 1/,
  );
});

Deno.test("writeServeReport() writes a Markdown table and well-formed SVG plots", async () => {
  const results = [await run("fp32"), await run("bf16")];
  const dir = await Deno.makeTempDir({ prefix: "serve_test_" });
  try {
    const paths = await writeServeReport(dir, {
      seed: { ...SHAPE, inputLen: 128, outputLen: 2048 },
      scaled: SHAPE,
      command: "deno task bench serve --quick",
      machine: MACHINE,
      model: "tiny",
      kvBudget: { bytes: 1 << 20, why: "1.00 MiB (test)" },
      maxNumBatchedTokens: 2048,
      results,
      notes: ["a note"],
    });
    assert.deepEqual(paths.map((p) => p.slice(dir.length + 1)), [
      "serve-decode-heavy-throughput.svg",
      "serve-decode-heavy-batch.svg",
      "serve-decode-heavy.md",
    ]);
    for (const p of paths.slice(0, 2)) {
      assertWellFormedSvg(await Deno.readTextFile(p));
    }
    const md = await Deno.readTextFile(paths[2]);
    const rows = md.split("\n").filter((l) => l.startsWith("| "));
    const table = rows.filter((l) => l.split("|").length === 19);
    assert.equal(table.length, 4, "header, separator, fp32, bf16");
    assert.match(table[0], /\| out tok\/s \| total tok\/s \| vs bf16 \|/);
    assert.match(table[3], /^\| bf16 \| [\d.]+ \| [\d.]+ \| 1\.00x \|/);
    assert.match(md, /Command: `deno task bench serve --quick`/);
    assert.match(md, /\| output tokens \| 2048 \| 4 \|/);
    assert.match(md, /commit abc1234/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseServeBenchArgs() reads a dtype list and names a bad flag", () => {
  const o = parseServeBenchArgs([
    "--dataset",
    "prefill-heavy",
    "--kv-cache-dtype",
    "bf16,fp8",
    "--quick",
  ]);
  assert.deepEqual(o.configs.map((c) => c.select.kvCacheDtype), [
    "bf16",
    "fp8_e4m3",
  ]);
  assert.equal(o.configs[0].select.int8Scheme, "per_token_head");
  assert.equal(shapeFor("prefill-heavy", o).numRequests, 16);
  assert.equal(shapeFor("prefill-heavy", o).inputLen, 256);
  assert.throws(
    () => parseServeBenchArgs(["--dataset", "chat"]),
    (e) => e instanceof UsageError && /--dataset: "chat"/.test(e.message),
  );
  assert.throws(
    () => parseServeBenchArgs(["--kv-cache-dtype", "bf16,fp7"]),
    /--kv-cache-dtype/,
  );
});

Deno.test("parseServeBenchArgs() gives every configuration the --backend-setting flags", () => {
  const o = parseServeBenchArgs([
    "--kv-cache-dtype",
    "bf16,int8",
    "--backend-setting",
    "accumulationPromotion=false",
  ]);
  assert.deepEqual(o.configs.map((c) => c.select.backendSettings), [
    { accumulationPromotion: "false" },
    { accumulationPromotion: "false" },
  ]);
  assert.throws(
    () => parseServeBenchArgs(["--backend-setting", "=1"]),
    /--backend-setting: "=1" is not NAME=VALUE/,
  );
});

Deno.test("parseServeBenchArgs() reads the scheduling policy and one K/V scale source", () => {
  const o = parseServeBenchArgs([]);
  assert.deepEqual(o.engine, {
    schedulingPolicy: "max_utilization",
    calculateKvScales: false,
  });
  const p = parseServeBenchArgs([
    "--scheduling-policy",
    "guaranteed_no_evict",
    "--kv-quant-params-path",
    "scales.json",
  ]);
  assert.equal(p.engine.schedulingPolicy, "guaranteed_no_evict");
  assert.equal(p.engine.kvQuantParamsPath, "scales.json");
  assert.throws(
    () => parseServeBenchArgs(["--scheduling-policy", "lifo"]),
    (e) =>
      e instanceof UsageError &&
      /--scheduling-policy: "lifo" is not a scheduling policy/.test(e.message),
  );
  assert.throws(
    () =>
      parseServeBenchArgs([
        "--kv-quant-params-path",
        "scales.json",
        "--calculate-kv-scales",
      ]),
    /both given: the scales come from one source/,
  );
});
