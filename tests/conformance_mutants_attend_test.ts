// Mutation check for the attention numerics and addressing cases (scale,
// large logits, K/V scales, table stride, 32-bit offsets, capability edges,
// kv-head grouping, window edges): each planted bug must fail the cases
// written for it, and nothing unrelated.
import assert from "node:assert/strict";
import {
  type ConformanceReport,
  runConformance,
} from "../conformance/runner.ts";
import type { BackendCapabilities } from "../mod.ts";
import {
  EDGE_CAPABILITIES,
  type Fault,
  faultyBackend,
} from "./mutants/faulty_backend.ts";

async function run(
  fault: Fault,
  options: { caps?: BackendCapabilities; filter?: string; long?: boolean } = {},
): Promise<ConformanceReport> {
  return await runConformance(faultyBackend(fault, options.caps), {
    seed: 7,
    ...(options.filter ? { filter: options.filter } : {}),
    ...(options.long ? { long: true } : {}),
  });
}

function failed(report: ConformanceReport): string[] {
  return report.targets.flatMap((t) => t.results)
    .filter((r) => r.status === "failed").map((r) => r.address);
}

function ran(report: ConformanceReport): string[] {
  return report.targets.flatMap((t) => t.results)
    .filter((r) => r.status !== "skipped").map((r) => r.address);
}

/**
 * The fault fails at least the `must` cases, and every failure is one the
 * fault can explain (`onlyWhere`).
 */
function failsExactlyWhere(
  report: ConformanceReport,
  must: readonly RegExp[],
  onlyWhere: RegExp,
) {
  const f = failed(report);
  for (const m of must) {
    assert.ok(
      f.some((a) => m.test(a)),
      `no failure matches ${m}; failed: ${f.join(", ")}`,
    );
  }
  const stray = f.filter((a) => !onlyWhere.test(a));
  assert.deepEqual(stray, [], "failures unrelated to the planted bug");
}

Deno.test("conformance passes the fault-free variant with the edge capabilities (head dims to 512, block size 64)", async () => {
  const report = await run("none", { caps: EDGE_CAPABILITIES });
  assert.deepEqual(failed(report), []);
  const addresses = ran(report);
  for (
    const edge of [
      /headDim=512;/,
      /headDim=8;/,
      /headDim=248;/,
      /blockSize=64;/,
    ]
  ) {
    assert.ok(addresses.some((a) => edge.test(a)), `no case ran ${edge}`);
  }
});

const EIGHT_BIT = /cache=(fp8_e4m3|fp8_e5m2|int8|int8_zp|int8_pth);/;

const expectations: [
  Fault,
  BackendCapabilities | undefined,
  readonly RegExp[],
  RegExp,
][] = [
  [
    "ignoresScale",
    undefined,
    [/scale=gemma$/, /scale=double$/, /cache=fp8_e4m3;.*scale=gemma/],
    /;scale=(gemma|double)/,
  ],
  [
    "noMaxSubtraction",
    undefined,
    [
      /cache=bf16;.*logits=shifted/,
      /cache=fp8_e4m3;.*logits=shifted/,
      /cache=int8;.*logits=shifted/,
      /keys=fp16max/,
      /keys=bf16max/,
    ],
    /;(logits=shifted|keys=(fp16|bf16)max)/,
  ],
  [
    // In fp32, logits in the hundreds overflow too (in fp64 they need 709).
    "noMaxSubtractionF32",
    undefined,
    [/logits=shifted/, /logits=hundreds/, /keys=fp16max/, /keys=bf16max/],
    /;(logits=(shifted|hundreds)|keys=(fp16|bf16)max)/,
  ],
  [
    "attendVUsesKScale",
    undefined,
    ["fp8_e4m3", "fp8_e5m2", "int8", "int8_zp", "int8_pth"].map((k) =>
      new RegExp(`cache=${k};.*values=offset`)
    ),
    // Elsewhere K and V share a range, so only per-token-head scales
    // (different per token and tensor) and keys up to 65504 (kScale 146,
    // vScale 1/448) differ; 16-bit caches never do. The onehot: probes read
    // V through attention with their own V scale, so they see it too.
    new RegExp(
      `values=offset|cache=int8_pth(;|$)|contract:.*int8_pth|${EIGHT_BIT.source}.*keys=fp16max|^onehot:`,
    ),
  ],
  [
    "strideFromSeqLen",
    undefined,
    [
      /cache=bf16;.*table=padded/,
      /table=stale/,
      /cache=fp8_e4m3;.*table=padded/,
    ],
    // incremental:decodeSteps pads its tables to the final width on purpose.
    /;table=(padded|stale)|^incremental:decodeSteps;/,
  ],
  [
    "truncatesHeadDim",
    EDGE_CAPABILITIES,
    [/headDim=512;/],
    /headDim=512;/,
  ],
  [
    "blockSize64As32",
    EDGE_CAPABILITIES,
    [/blockSize=64;/],
    /blockSize=64;/,
  ],
  ["pow2Group", undefined, [/gqa=3;/], /gqa=3;/],
  [
    "windowOffByOne",
    undefined,
    [/window=1;/],
    /window=(smaller|1|equal);|contract:planReused/,
  ],
];

for (const [fault, caps, must, onlyWhere] of expectations) {
  Deno.test(`conformance fails the "${fault}" mutant on its cases only`, async () => {
    const report = await run(fault, caps ? { caps } : {});
    assert.ok(report.unexpectedFailures > 0, `${fault}: the suite passed it`);
    failsExactlyWhere(report, must, onlyWhere);
  });
}

// The >2^31-element case allocates 2^31 + 2^14 one-byte codes for K and for
// V (about 4.3 GB, as the reference backend's long tier does); it runs alone.
const BIG = "attend:*bigCache=true";

Deno.test("the >2^31-element case passes the fault-free variant and fails int32 offsets", async () => {
  const control = await run("none", { filter: BIG, long: true });
  assert.equal(ran(control).length, 1);
  assert.deepEqual(failed(control), []);
  const report = await run("int32Offsets", { filter: BIG, long: true });
  const result = report.targets[0].results[0];
  assert.equal(result.status, "failed");
  // The writes and reads wrap alike (readCache agrees with attend), so it
  // is the codec-value oracle and the poisoned alias blocks that catch it.
  assert.match(
    result.message ?? "",
    /codec's values of the written K\/V.*blocks 0, 1 were poisoned/s,
  );
});
