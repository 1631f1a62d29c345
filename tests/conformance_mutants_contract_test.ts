// Mutation check for the contract and incremental cases and the runner:
// each planted bug must fail the intended cases and nothing
// unrelated, and the fault-free control (in conformance_mutants_test.ts)
// must still pass everything.
import assert from "node:assert/strict";
import type { CaseResult } from "../conformance/case.ts";
import {
  type ConformanceOptions,
  type ConformanceReport,
  runConformance,
} from "../conformance/runner.ts";
import { formatSummary } from "../conformance/report.ts";
import {
  CAPABILITIES,
  type Fault,
  faultyBackend,
} from "./mutants/faulty_backend.ts";

async function run(
  fault: Fault,
  options: ConformanceOptions = {},
): Promise<ConformanceReport> {
  return await runConformance(faultyBackend(fault), { seed: 7, ...options });
}

/**
 * The groups these faults touch (contract: and incremental:) in one report;
 * the write: and attend: groups are left to conformance_mutants_test.ts.
 */
async function runGroups(fault: Fault): Promise<ConformanceReport> {
  const parts = await Promise.all(
    ["contract:", "incremental:"].map((filter) => run(fault, { filter })),
  );
  return {
    ...parts[0],
    targets: [{
      ...parts[0].targets[0],
      results: parts.flatMap((p) => p.targets[0].results),
    }],
    problems: parts.flatMap((p) => p.problems),
    unexpectedFailures: parts.reduce((n, p) => n + p.unexpectedFailures, 0),
  };
}

function results(report: ConformanceReport): CaseResult[] {
  return report.targets.flatMap((t) => t.results);
}

function failedAddresses(report: ConformanceReport): string[] {
  return results(report).filter((r) => r.status === "failed").map((r) =>
    r.address
  );
}

/** Every case that ran and matches passed, and at least one ran. */
function allPassed(report: ConformanceReport, match: (a: string) => boolean) {
  const ran = results(report).filter((r) =>
    r.status !== "skipped" && match(r.address)
  );
  assert.ok(ran.length > 0, "no such case ran");
  assert.deepEqual(
    ran.filter((r) => r.status !== "passed").map((r) =>
      `${r.address}: ${r.message}`
    ),
    [],
  );
}

const eightBitIncremental = (a: string) =>
  a.startsWith("incremental:") && !/cache=(fp32|fp16|bf16)$/.test(a);

const expectations: [Fault, (r: ConformanceReport) => void][] = [
  ["cachesDequantized", (r) => {
    const failed = failedAddresses(r);
    // Every incremental case writes into blocks attended before.
    for (const scenario of ["decodeSteps", "blockReuse"]) {
      assert.ok(
        failed.some((a) => a.startsWith(`incremental:${scenario};`)),
        `${scenario} catches it`,
      );
    }
    // copyBlocks then attend over a copied block is the same bug.
    assert.deepEqual(
      failed.filter((a) =>
        !a.startsWith("incremental:") && !a.startsWith("contract:copyBlocks;")
      ),
      [],
    );
    const f = results(r).find((x) =>
      x.address === "incremental:decodeSteps;cache=fp32"
    );
    assert.match(f?.message ?? "", /step 2 of 6 .*actual NaN/s);
  }],
  ["firstCallState", (r) => {
    const failed = failedAddresses(r);
    assert.ok(failed.length > 0);
    // Only decodeSteps grows a sequence past its first call's blocks.
    assert.ok(
      failed.every((a) => a.startsWith("incremental:decodeSteps;")),
      failed.join(", "),
    );
    assert.match(
      results(r).find((x) => x.address === "incremental:decodeSteps;cache=bf16")
        ?.message ?? "",
      /step \d of 6 \(sequence lengths \d+ and/,
    );
    allPassed(r, (a) => a.startsWith("incremental:blockReuse;"));
  }],
  ["bytesWithoutScales", (r) => {
    assert.deepEqual(failedAddresses(r), [
      "contract:bytesPerBlock;cache=int8_pth",
    ]);
    assert.match(
      results(r).find((x) => x.status === "failed")?.message ?? "",
      /cacheBytesPerBlock is 8192 for int8_pth .* at least 8448 bytes: .*one 4-byte fp32 scale per token and kv head/,
    );
    allPassed(
      r,
      (a) => a.startsWith("contract:bytesPerBlock;") && !a.endsWith("int8_pth"),
    );
  }],
  ["attendAfterDispose", (r) => {
    assert.deepEqual(failedAddresses(r), ["contract:dispose"]);
    assert.match(
      results(r).find((x) => x.address === "contract:dispose")?.message ?? "",
      /^ConformanceFailure: attend\(\) still worked after dispose\(\)/,
    );
  }],
  ["copyOnlyFirstPair", (r) => {
    const failed = failedAddresses(r);
    assert.ok(failed.length > 0);
    assert.ok(failed.every((a) => a.startsWith("contract:copyBlocks;")));
    assert.match(
      results(r).find((x) => x.address === "contract:copyBlocks;cache=fp16")
        ?.message ?? "",
      /pairs apply in order: .*attention over block \d+ differs from attention before the copy over block \d+, whose data it must hold/,
    );
  }],
  ["copySnapshot", (r) => {
    const failed = failedAddresses(r);
    // Every cache kind: the chain a->f->g must leave a's data in g.
    assert.equal(
      failed.filter((a) => a.startsWith("contract:copyBlocks;")).length,
      8,
    );
    assert.deepEqual(
      failed.filter((a) => !a.startsWith("contract:copyBlocks;")),
      [],
    );
  }],
];

for (const [fault, check] of expectations) {
  Deno.test(`conformance fails the "${fault}" mutant and points at the bug`, async () => {
    const report = await runGroups(fault);
    assert.ok(
      report.unexpectedFailures > 0,
      `${fault}: the suite passed a broken backend`,
    );
    check(report);
  });
}

Deno.test("the incremental cases pass the fault-free backend, 8-bit caches included", async () => {
  const report = await run("none", { filter: "incremental:" });
  allPassed(report, eightBitIncremental);
  assert.equal(report.unexpectedFailures, 0);
});

Deno.test("a hanging attend fails its case by the deadline, naming the case and the phase, and the run goes on", async () => {
  const report = await run("hangsInAttend", {
    filter: "contract:",
    timeoutMs: 200,
  });
  const rs = results(report);
  const first = rs.find((r) => r.status === "failed");
  assert.equal(first?.address, "contract:deterministic");
  assert.equal(first?.phase, "attend");
  assert.equal(first?.timedOut, true);
  assert.match(
    first?.message ?? "",
    /^CaseTimeout: contract:deterministic timed out after 0.2 s on backend faulty, target reference, in phase attend: attend\(\) never returned; .*--timeout SECONDS/,
  );
  // After two timeouts the target stops; the cases before still passed.
  assert.ok(
    rs.some((r) => r.message?.startsWith("not run: 2 cases timed out")),
  );
  allPassed(report, (a) => a.startsWith("contract:undeclared;headDim"));
  assert.match(
    formatSummary(report),
    /FAIL reference contract:deterministic \(timed out in phase attend\)/,
  );
});

Deno.test("a backend exception names the backend, target, case and phase, with the backend's stack", async () => {
  const report = await run("crashesOnPadding", {
    filter: "attend:mode=decode;len=37;cache=fp32;",
  });
  const f = results(report).find((r) => r.status === "failed");
  assert.equal(f?.phase, "write");
  assert.match(
    f?.message ?? "",
    /^write\(\) of backend faulty on target reference threw during case attend:mode=decode;len=37;cache=fp32;\S+: TypeError: Cannot read properties of undefined/,
  );
  assert.match(
    f?.message ?? "",
    /backend stack:\n\s+at .*faulty_backend\.ts:\d+/,
  );
  assert.match(formatSummary(report), /backend stack:/);
});

Deno.test("a target's extraReasons are honoured as capability skips, with the reason", async () => {
  const refuseGqa8 = (l: { numQHeads: number; numKvHeads: number }) =>
    l.numQHeads / l.numKvHeads === 8 ? ["GQA ratio 8 is not fused"] : [];
  const definition = faultyBackend("none", CAPABILITIES, refuseGqa8);
  const gqa8 = await runConformance(definition, { seed: 7, filter: "gqa=8" });
  const rs = results(gqa8);
  assert.ok(rs.length > 0);
  for (const r of rs) {
    assert.equal(r.status, "skipped", `${r.address}: ${r.message}`);
    assert.match(r.message ?? "", /GQA ratio 8 is not fused/);
  }
  // Nothing else is refused: the contract cases (gqa 4) still run and pass.
  const others = await runConformance(definition, {
    seed: 7,
    filter: "contract:",
  });
  assert.equal(others.unexpectedFailures, 0);
  allPassed(others, (a) => a.startsWith("contract:copyBlocks;"));
});

Deno.test("conformance fails a backend whose createCache serves layers its own extraReasons refuse", async () => {
  const refuseGqa8 = (l: { numQHeads: number; numKvHeads: number }) =>
    l.numQHeads / l.numKvHeads === 8 ? ["GQA ratio 8 is not fused"] : [];
  const report = await runConformance(
    faultyBackend("ignoresExtraReasons", CAPABILITIES, refuseGqa8),
    { seed: 7, filter: "contract:" },
  );
  assert.deepEqual(failedAddresses(report), ["contract:extraReasons"]);
  assert.match(
    results(report).find((r) => r.status === "failed")?.message ?? "",
    /createCache accepted 2 layer\(s\) that the target's own extraReasons\(\) refuses: 16\/2 heads, .*GQA ratio 8 is not fused.*assertSupported/,
  );
  const control = await runConformance(
    faultyBackend("none", CAPABILITIES, refuseGqa8),
    { seed: 7, filter: "contract:extraReasons" },
  );
  assert.equal(control.unexpectedFailures, 0);
  assert.equal(results(control)[0].status, "passed");
});

Deno.test("a run in which no case ran is a failure with the reason", async () => {
  const typo = await run("none", { filter: "atend:" });
  assert.equal(typo.unexpectedFailures, 1);
  assert.match(typo.problems[0], /--filter 'atend:' matches no case address/);

  const absent = await run("none", { targets: ["webgpu"] });
  assert.ok(absent.unexpectedFailures > 0);
  assert.match(
    absent.problems.join("\n"),
    /target webgpu was asked for, but backend faulty ships only reference/,
  );

  const skipped = await run("none", { filter: "lowprec:" });
  assert.equal(skipped.unexpectedFailures, 1);
  assert.match(skipped.problems[0], /no case ran: every case was skipped/);
  assert.match(formatSummary(skipped), /Result: NOT conformant/);
});
