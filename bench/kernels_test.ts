import assert from "node:assert/strict";
import { main } from "./kernels.ts";
import { parseKernelArgs } from "./kernels/options.ts";
import { runGrid } from "./kernels/run.ts";
import {
  createReferenceBackend,
  REFERENCE_CAPABILITIES,
} from "../backends/reference/mod.ts";
import type { BackendDefinition } from "../core/backend.ts";
import { probeNativeAddon } from "../native/mod.ts";

/** A fixed tiny grid: seconds on 2 CPU cores, every column still filled. */
const GRID = [
  "--quick",
  "--shape",
  "llama,gemma",
  "--kv-cache-dtype",
  "bf16,int8",
  "--context",
  "32,80",
  "--batch",
  "1,2",
  "--torch",
  "no",
];

/** Runs the benchmark quietly; returns the Markdown and SVG it wrote. */
async function runQuick(target: string) {
  const out = await Deno.makeTempDir();
  const log = console.log;
  console.log = () => {};
  let code;
  try {
    code = await main([...GRID, "--target", target, "--out", out]);
  } finally {
    console.log = log;
  }
  assert.equal(code, 0);
  const md = await Deno.readTextFile(`${out}/kernels-${target}.md`);
  const svg = await Deno.readTextFile(`${out}/kernels-${target}.svg`);
  await Deno.remove(out, { recursive: true });
  return { md, svg };
}

/** Table rows of a backend, cells split. */
function rowsOf(md: string, backend: string): string[][] {
  return md.split("\n").filter((l) => l.startsWith(`| ${backend} |`)).map((
    l,
  ) => l.split("|").slice(1, -1).map((c) => c.trim()));
}

function checkRows(rows: string[][], expected: number): void {
  assert.equal(rows.length, expected);
  for (const [, dtype, , , ms, , gbs, pct, gflops, ratio] of rows) {
    for (const v of [ms, gbs, pct.replace(/%$/, ""), gflops]) {
      assert.ok(Number(v) > 0 && Number.isFinite(Number(v)), `${v} in ${rows}`);
    }
    assert.match(pct, /%$/);
    if (dtype === "int8") assert.match(ratio, /^\d+\.\d\d \(vs bf16\)$/);
    else assert.equal(ratio, "—");
  }
}

Deno.test("bench kernels --quick on the reference target writes a table of finite, positive figures and a plot", async () => {
  const { md, svg } = await runQuick("reference");
  assert.match(md, /Memory bandwidth, measured in this run: /);
  // 2 shapes x 2 dtypes x 2 modes x 2 contexts x 2 batches
  checkRows(rowsOf(md, "reference/reference"), 32);
  assert.match(md, /### gemma prefill/);
  assert.match(svg, /^<svg [^>]*>.*<polyline .*<\/svg>\n$/s);
});

Deno.test({
  name:
    "bench kernels --quick on native measures bandwidth and lists every skip with its reason",
  ignore: !probeNativeAddon().available,
  async fn() {
    const { md, svg } = await runQuick("native");
    assert.match(md, /: \d+\.\d\d GB\/s \(native streamRead of 64 MiB/);
    // xformers: llama only (Gemma's soft-cap is outside its capabilities).
    checkRows(rowsOf(md, "xformers/native"), 16);
    assert.match(md, /- xformers\/native gemma bf16: logit soft-cap \(50\)/);
    assert.match(md, /- reference: has no native target/);
    assert.match(svg, /<polyline /);
  },
});

Deno.test({
  name:
    "streamRead() reads every word: its checksum is the XOR of all 32-bit words",
  ignore: !probeNativeAddon().available,
  fn() {
    const probe = probeNativeAddon();
    if (!probe.available) return;
    const words = new Uint32Array(3 << 18);
    for (let i = 0; i < words.length; i++) words[i] = Math.imul(i, 0x9e3779b1);
    const expected = words.reduce((a, w) => (a ^ w) >>> 0, 0);
    const r = probe.addon.streamRead(new Uint8Array(words.buffer), 2);
    assert.equal(r.checksum, expected);
    assert.ok(r.bestSeconds > 0);
    assert.throws(
      () => probe.addon.streamRead(new Uint8Array(12), 1),
      /multiple of 8 bytes/,
    );
  },
});

Deno.test("parseKernelArgs() names the flag of every bad value", () => {
  assert.throws(
    () => parseKernelArgs(["--shape", "mistral"]),
    /--shape: "mistral" is not a shape/,
  );
  assert.throws(
    () => parseKernelArgs(["--batch", "0"]),
    /--batch: "0" must be an integer >= 1/,
  );
  assert.throws(
    () => parseKernelArgs(["--kv-cache-dtype", "fp4"]),
    /--kv-cache-dtype: /,
  );
  assert.throws(
    () => parseKernelArgs(["--max-kv-bytes", "lots"]),
    /--max-kv-bytes: "lots" is not a size/,
  );
  assert.throws(
    () => parseKernelArgs(["--target", "cuda"]),
    /--target: "cuda" is not one of native, webgpu, reference/,
  );
  const quick = parseKernelArgs(["--quick", "--batch", "3"]);
  assert.deepEqual(quick.batches, [3]);
  assert.deepEqual(quick.contexts, [64, 256]);
});

Deno.test("runGrid() skips, with the backend's own error, the points whose cache cannot be made and measures the rest", async () => {
  const capped: BackendDefinition = {
    apiVersion: 1,
    name: "capped",
    version: "0",
    description: "the reference backend refusing caches over 4 blocks",
    targets: [{
      target: "reference",
      capabilities: REFERENCE_CAPABILITIES,
      probe: () => ({ available: true }),
      create: () => {
        const reference = createReferenceBackend(); // runGrid disposes it
        return {
          ...reference,
          name: "capped",
          createCache(config, options) {
            if (options.numBlocks > 4) {
              throw new RangeError(
                `${options.numBlocks} blocks: use at most 4`,
              );
            }
            return reference.createCache(config, options);
          },
        };
      },
    }],
  };
  const o = parseKernelArgs([
    "--quick",
    "--target",
    "reference",
    "--shape",
    "llama",
    "--kv-cache-dtype",
    "bf16",
    "--mode",
    "decode",
    "--context",
    "16,48",
    "--batch",
    "1,2",
    "--max-kv-bytes",
    "200KiB",
  ]);
  const { rows, skips } = await runGrid([capped], o, () => {});
  // 48 x 2 = 6 blocks (384 KiB) is over --max-kv-bytes; 48 x 1 = 3 blocks
  // and 16 x 2 = 2 blocks fit the cap; nothing needs more than 4 blocks.
  assert.deepEqual(
    rows.map((r) => [r.context, r.batch]),
    [[16, 1], [16, 2], [48, 1]],
  );
  assert.match(skips[0].reason, /over --max-kv-bytes 200 KiB/);
  const tight = await runGrid(
    [capped],
    { ...o, contexts: [16, 80], batches: [1], maxKvBytes: 2 ** 30 },
    () => {},
  );
  assert.deepEqual(tight.rows.map((r) => r.context), [16]);
  assert.match(
    tight.skips[0].reason,
    /its cache of 5 blocks failed: 5 blocks: use at most 4/,
  );
});

Deno.test("bench kernels --backend-setting reaches each measured backend that takes it, checked by its schema", async () => {
  const seen: unknown[] = [];
  const tuned: BackendDefinition = {
    apiVersion: 1,
    name: "tuned",
    version: "0",
    description: "the reference backend with a setting",
    settings: [{
      name: "fast",
      type: "boolean",
      default: true,
      description: "Go fast",
    }],
    targets: [{
      target: "reference",
      capabilities: REFERENCE_CAPABILITIES,
      probe: () => ({ available: true }),
      create: (options) => {
        seen.push(options?.settings);
        return createReferenceBackend();
      },
    }],
  };
  const o = parseKernelArgs([
    "--quick",
    "--target",
    "reference",
    "--shape",
    "llama",
    "--kv-cache-dtype",
    "bf16",
    "--mode",
    "decode",
    "--context",
    "16",
    "--batch",
    "1",
    "--backend-setting",
    "fast=false",
  ]);
  assert.deepEqual(o.backendSettings, { fast: "false" });
  await runGrid([tuned], o, () => {});
  assert.deepEqual(seen, [{ fast: false }]);
  await assert.rejects(
    runGrid([tuned], { ...o, backendSettings: { fast: "maybe" } }, () => {}),
    /fast/,
  );
  await assert.rejects(
    runGrid([tuned], { ...o, backendSettings: { slow: "1" } }, () => {}),
    /No backend in use takes the setting "slow": no loaded backend declares it; in use: tuned\/reference/,
  );
  assert.throws(
    () => parseKernelArgs(["--backend-setting", "fast"]),
    /--backend-setting: "fast" is not NAME=VALUE/,
  );
});
