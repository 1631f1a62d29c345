// Mutation check for exact cache writes: each planted encoder
// bug must fail the crafted write: cases (exact readCache check) or, for a
// backend without readCache, the onehot: cases, and must not fail cases that
// cannot see it. The fault-free control runs in conformance_mutants_test.ts.
import assert from "node:assert/strict";
import {
  type ConformanceReport,
  runConformance,
} from "../conformance/runner.ts";
import { type Fault, faultyBackend } from "./mutants/faulty_backend.ts";
import { craftedValues } from "../conformance/special_values.ts";

/** The write: and onehot: cases only (the other groups are checked elsewhere). */
async function run(fault: Fault): Promise<ConformanceReport> {
  const [w, o] = await Promise.all(
    ["write:", "onehot:"].map((filter) =>
      runConformance(faultyBackend(fault), { seed: 7, filter })
    ),
  );
  return {
    ...w,
    targets: [{
      ...w.targets[0],
      results: [...w.targets[0].results, ...o.targets[0].results],
    }],
    unexpectedFailures: w.unexpectedFailures + o.unexpectedFailures,
  };
}

const results = (r: ConformanceReport) => r.targets.flatMap((t) => t.results);
const failed = (r: ConformanceReport) =>
  results(r).filter((x) => x.status === "failed").map((x) => x.address);
/** Statuses of the cases that ran (not skipped) whose address starts with prefix. */
const statusOf = (r: ConformanceReport, prefix: string) =>
  results(r).filter((x) =>
    x.status !== "skipped" && x.address.startsWith(prefix)
  )
    .map((x) => x.status);

/** Every case whose address starts with one of `prefixes` ran and failed. */
function allFail(r: ConformanceReport, prefixes: string[]) {
  for (const p of prefixes) {
    const s = statusOf(r, p);
    assert.ok(s.length > 0, `no case ${p}`);
    assert.deepEqual(s, s.map(() => "failed"), `${p} must fail`);
  }
}

/** Every case whose address starts with one of `prefixes` ran and passed. */
function allPass(r: ConformanceReport, prefixes: string[]) {
  for (const p of prefixes) {
    const s = statusOf(r, p);
    assert.ok(s.length > 0, `no case ${p}`);
    assert.deepEqual(s, s.map(() => "passed"), `${p} must pass`);
  }
}

/** Every failure is one of the allowed groups. */
function onlyFailures(r: ConformanceReport, allowed: RegExp) {
  const stray = failed(r).filter((a) => !allowed.test(a));
  assert.deepEqual(stray, [], "only the cases that see the fault fail");
}

const crafted = (cache: string) => `write:cache=${cache};input=crafted;`;
const fp8Int8 = ["fp8_e4m3", "fp8_e5m2", "int8", "int8_zp", "int8_pth"];
const sixteen = ["fp32", "fp16", "bf16"];
// Random data at scale 1 or amax may hit a tie or a subnormal by chance,
// which the exact check rightly catches; attention never sees them.
const writeOrOnehot = /^(write|onehot):/;

const expectations: [Fault, (r: ConformanceReport) => void][] = [
  ["roundHalfAway", (r) => {
    allFail(r, [...fp8Int8.map(crafted), "onehot:"]);
    allPass(r, sixteen.map(crafted));
    onlyFailures(r, writeOrOnehot);
  }],
  ["truncates", (r) => {
    allFail(r, [...fp8Int8.map(crafted), "onehot:"]);
    allPass(r, sixteen.map(crafted));
  }],
  ["e4m3InfToNan", (r) => {
    allFail(r, [crafted("fp8_e4m3"), "onehot:cache=fp8_e4m3;"]);
    allPass(r, [crafted("fp8_e5m2"), crafted("int8"), "onehot:cache=int8;"]);
    onlyFailures(
      r,
      /^(write:cache=fp8_e4m3;input=crafted|onehot:cache=fp8_e4m3;)/,
    );
  }],
  ["e5m2SaturatesInf", (r) => {
    allFail(r, [crafted("fp8_e5m2"), "onehot:cache=fp8_e5m2;"]);
    onlyFailures(
      r,
      /^(write:cache=fp8_e5m2;input=crafted|onehot:cache=fp8_e5m2;)/,
    );
  }],
  ["int8NanToMin", (r) => {
    allFail(r, [crafted("int8"), crafted("int8_zp"), crafted("int8_pth")]);
    allFail(r, ["onehot:cache=int8"]);
    onlyFailures(r, /^(write:cache=int8\w*;input=crafted|onehot:cache=int8)/);
  }],
  ["flushSubnormals", (r) => {
    allFail(r, [crafted("fp8_e4m3"), crafted("fp8_e5m2"), "onehot:cache=fp8"]);
    allPass(r, [crafted("int8"), "onehot:cache=int8"]);
    onlyFailures(r, writeOrOnehot);
  }],
  ["negZeroLost", (r) => {
    allFail(r, [crafted("fp8_e4m3"), crafted("fp8_e5m2"), crafted("fp16")]);
    allFail(r, [crafted("bf16")]);
    // Attention cannot tell +0 from -0: the one-hot cases pass it.
    allPass(r, ["onehot:", crafted("int8"), crafted("fp32")]);
    onlyFailures(r, /^write:/);
  }],
  ["vUsesKScale", (r) => {
    // K and V have their own scales and zero points in every per-tensor
    // case: random data at amax scale shows it as well as crafted data.
    allFail(r, [
      ...["fp8_e4m3", "fp8_e5m2", "int8", "int8_zp"].flatMap((c) => [
        crafted(c),
        `write:cache=${c};scale=amax;`,
        `onehot:cache=${c};`,
      ]),
    ]);
    allPass(r, [crafted("int8_pth"), "onehot:cache=int8_pth"]);
  }],
  ["hiddenRoundHalfAway", (r) => {
    // No readCache: the write cases skip, saying what is lost, and only the
    // one-hot cases catch the rounding, through K probes as well as V.
    const writes = results(r).filter((x) => x.address.startsWith("write:"));
    assert.ok(writes.every((x) => x.status === "skipped"));
    assert.match(
      writes[0].message ?? "",
      /no readCache.*onehot: cases.*weaker/,
    );
    allFail(r, ["onehot:"]);
    onlyFailures(r, /^onehot:/);
    const msg = results(r).find((x) =>
      x.address.startsWith("onehot:cache=int8;scale=odd")
    )?.message ?? "";
    assert.match(msg, /\n {2}K: sequence \d+ \(two keys\)/);
  }],
];

for (const [fault, check] of expectations) {
  Deno.test(`conformance fails the "${fault}" write mutant on the cases that see it`, async () => {
    const report = await run(fault);
    assert.ok(report.unexpectedFailures > 0, `${fault}: the suite passed it`);
    check(report);
  });
}

Deno.test("the fault-free variant passes every write: and onehot: case", async () => {
  const r = await run("none");
  assert.deepEqual(failed(r), []);
  assert.ok(statusOf(r, "write:").length > 30);
  assert.ok(statusOf(r, "onehot:").length === 10);
});

Deno.test("crafted values hit a tie in every fp8 binade at the odd scale too", () => {
  for (const [dtype, scale] of [["fp8_e4m3", 0.37], ["fp8_e5m2", 3]] as const) {
    const { x, why } = craftedValues(dtype, scale, 0);
    const s = Math.fround(scale);
    const binades = new Set<number>();
    why.forEach((w, i) => {
      if (!w.startsWith("tie ")) return;
      const y = Math.fround(x[i] / s);
      binades.add(Math.floor(Math.log2(Math.abs(y))));
    });
    const lo = dtype === "fp8_e4m3" ? -10 : -17,
      hi = dtype === "fp8_e4m3" ? 8 : 15;
    for (let e = lo; e <= hi; e++) {
      assert.ok(binades.has(e), `${dtype} binade 2^${e}`);
    }
  }
});
