// Mutation check: each planted bug must make the conformance suite fail, and
// the failures must point at the bug (the cases that exercise it fail, the
// ones that do not still pass). A check that cannot fail proves nothing.
import assert from "node:assert/strict";
import {
  type ConformanceReport,
  runConformance,
} from "../conformance/runner.ts";
import {
  CAPABILITIES,
  type Fault,
  faultyBackend,
} from "./mutants/faulty_backend.ts";

async function run(fault: Fault): Promise<ConformanceReport> {
  return await runConformance(faultyBackend(fault), { seed: 7 });
}

function failed(report: ConformanceReport) {
  return report.targets.flatMap((t) => t.results).filter((r) =>
    r.status === "failed"
  );
}

/** Statuses of the cases that ran (not skipped) whose address matches. */
function statusOf(
  report: ConformanceReport,
  match: (address: string) => boolean,
) {
  return report.targets.flatMap((t) => t.results)
    .filter((r) => r.status !== "skipped" && match(r.address))
    .map((r) => r.status);
}

function allPassed(statuses: string[]) {
  assert.ok(statuses.length > 0, "no such case ran");
  assert.deepEqual(statuses, statuses.map(() => "passed"));
}

Deno.test("conformance passes the fault-free variant (the control)", async () => {
  const report = await run("none");
  assert.deepEqual(failed(report).map((r) => `${r.address}: ${r.message}`), []);
});

Deno.test("conformance passes a correct backend that declares only decode, only block size 8 and no soft-cap", async () => {
  // Declaring less must never turn into failures: every case either fits the
  // declared capabilities or is skipped with the reason.
  const report = await runConformance(
    faultyBackend("none", {
      ...CAPABILITIES,
      blockSizes: [8],
      prefill: false,
      mixedBatches: false,
      softCap: false,
      kvDtypes: ["bf16", "fp8_e5m2"],
      int8Schemes: [],
    }),
    { seed: 7 },
  );
  assert.deepEqual(failed(report).map((r) => `${r.address}: ${r.message}`), []);
  const results = report.targets[0].results;
  assert.ok(results.filter((r) => r.status === "passed").length > 20);
  assert.ok(
    results.some((r) =>
      r.status === "skipped" && r.message === "prefill is not supported"
    ),
  );
});

const expectations: [Fault, (r: ConformanceReport) => void][] = [
  ["gqaMapping", (r) => {
    assert.ok(failed(r).some((f) => f.address.includes("gqa=4")));
    assert.deepEqual(
      statusOf(r, (a) => a.startsWith("attend:") && a.includes("gqa=1;")),
      ["passed"],
    );
  }],
  ["causalOffByOne", (r) => {
    assert.ok(failed(r).some((f) => f.address.includes("mode=prefill")));
    // A pure decode has no future keys to leak: it must still pass.
    allPassed(
      statusOf(r, (a) => a.startsWith("attend:mode=decode;len=37;cache=fp32;")),
    );
  }],
  ["scaleTwice", (r) => {
    const f = failed(r).find((x) =>
      x.address.startsWith("write:cache=fp8_e4m3;scale=amax")
    );
    assert.match(f?.message ?? "", /read back wrong/);
    allPassed(statusOf(r, (a) => a.startsWith("write:cache=bf16")));
  }],
  ["tableOverread", (r) => {
    const f = failed(r).find((x) => x.address.startsWith("attend:mode=decode"));
    assert.match(
      f?.message ?? "",
      /actual NaN/,
      "the poisoned block reached the output",
    );
  }],
  ["writesPadding", (r) => {
    const f = failed(r).find((x) => x.address.startsWith("write:"));
    assert.match(f?.message ?? "", /not written: must be unchanged/);
  }],
  ["ignoresWindow", (r) => {
    assert.ok(failed(r).length > 0);
    // planReused's second layer is a sliding-window layer, on purpose.
    assert.ok(
      failed(r).every((f) =>
        /window=(smaller|equal|1);/.test(f.address) ||
        f.address === "contract:planReused;layers=2"
      ),
      "only windowed cases fail",
    );
  }],
  ["ignoresSoftCap", (r) => {
    assert.ok(failed(r).length > 0);
    assert.ok(
      failed(r).every((f) => f.address.includes("softCap=2")),
      "only soft-capped cases fail",
    );
  }],
  ["skipsLastRow", (r) => {
    assert.match(
      failed(r)[0]?.message ?? "",
      /actual NaN/,
      "the NaN-filled output shows the unwritten row",
    );
  }],
  ["noSupportCheck", (r) => {
    const f = failed(r).find((x) =>
      x.address === "contract:undeclared;headDim=12"
    );
    assert.match(
      f?.message ?? "",
      /createCache accepted headDim=12.*call assertSupported\(\) in createCache/,
    );
  }],
  ["copyDropsScales", (r) => {
    assert.deepEqual(failed(r).map((f) => f.address), [
      "contract:copyBlocks;cache=int8_pth",
    ]);
  }],
  ["planHoldsLayer", (r) => {
    const f = failed(r).find((x) =>
      x.address === "contract:planReused;layers=2"
    );
    assert.match(
      f?.message ?? "",
      /with one plan shared by two layers, layer 1/,
    );
  }],
];

for (const [fault, check] of expectations) {
  Deno.test(`conformance fails the "${fault}" mutant and points at the bug`, async () => {
    const report = await run(fault);
    assert.ok(
      report.unexpectedFailures > 0,
      `${fault}: the suite passed a broken backend`,
    );
    assert.ok(
      failed(report).every((f) =>
        /reproduce: deno task conformance --backend faulty --target reference --filter '.*' --seed 7/
          .test(f.message ?? "")
      ),
      "every failure carries its reproduce command",
    );
    check(report);
  });
}
