// The runner and the command line around the cases: a run that checks
// nothing fails, a hang is reported with its case and phase (even one that
// blocks the event loop), and registerConformanceTests says the same things
// as failing tests.
import assert from "node:assert/strict";
import referenceBackend from "../backends/reference/mod.ts";
import { registerConformanceTests } from "../conformance/register.ts";
import { runConformance } from "../conformance/runner.ts";
import { faultyBackend } from "./mutants/faulty_backend.ts";

const root = new URL("../", import.meta.url);

async function cli(...args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-ffi",
      "tools/conformance.ts",
      ...args,
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

Deno.test("the command line exits 1 when a filter matches no case", async () => {
  const r = await cli(
    "--backend",
    "reference",
    "--filter",
    "atend:",
    "--quiet",
  );
  assert.equal(r.code, 1);
  assert.match(r.stdout, /--filter 'atend:' matches no case address/);
  assert.match(r.stdout, /Result: NOT conformant/);
});

Deno.test("the command line exits 1 when a named target is not shipped", async () => {
  const r = await cli(
    "--backend",
    "reference",
    "--target",
    "native",
    "--quiet",
  );
  assert.equal(r.code, 1);
  assert.match(
    r.stdout,
    /target native was asked for, but backend reference ships only reference/,
  );
});

Deno.test("the command line refuses a --timeout that is not a number of seconds", async () => {
  const r = await cli("--backend", "reference", "--timeout", "soon");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--timeout: "soon" is not a number of seconds/);
});

Deno.test("the command line reports a case that blocks the event loop, with its phase, and exits 1", async () => {
  const start = performance.now();
  const r = await cli(
    "--backend",
    "./tests/mutants/spinning_backend.ts",
    "--filter",
    "contract:deterministic",
    "--timeout",
    "1",
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /FAIL {2}reference contract:deterministic \(timed out in phase attend\)\n {2}contract:deterministic timed out after 1 s in phase attend, and the run stops here: attend\(\) blocked the event loop/,
  );
  assert.match(
    r.stderr,
    /reproduce: deno task conformance --backend \.\/tests\/mutants\/spinning_backend\.ts/,
  );
  // The deadline plus the grace period (2 s), not forever.
  assert.ok(performance.now() - start < 30_000);
});

interface Registered {
  name: string;
  ignore?: boolean;
  fn: () => Promise<void>;
}

async function register(
  ...args: Parameters<typeof registerConformanceTests>
): Promise<Registered[]> {
  const tests: Registered[] = [];
  await registerConformanceTests(args[0], {
    ...args[1],
    test: (t) => tests.push(t),
  });
  return tests;
}

Deno.test("registerConformanceTests registers a failing test when no case would run", async () => {
  const typo = await register(referenceBackend, { filter: "contract:dipose" });
  assert.deepEqual(typo.map((t) => t.name), [
    "conformance reference: no case runs",
  ]);
  await assert.rejects(
    typo[0].fn(),
    /no conformance case of backend reference would run/,
  );

  const absent = await register(referenceBackend, { targets: ["webgpu"] });
  assert.deepEqual(absent.map((t) => t.name), [
    "conformance reference/webgpu (not shipped)",
    "conformance reference: no case runs",
  ]);
  await assert.rejects(
    absent[0].fn(),
    /target webgpu was asked for, but backend reference ships only reference/,
  );
});

Deno.test("registerConformanceTests fails a hanging case by its deadline, naming the phase", async () => {
  const tests = await register(faultyBackend("hangsInAttend"), {
    filter: "contract:deterministic",
    timeoutMs: 100,
  });
  assert.equal(tests.length, 1);
  await assert.rejects(
    tests[0].fn(),
    /contract:deterministic timed out after 0.1 s on backend faulty, target reference, in phase attend/,
  );
});

Deno.test("registerConformanceTests and runConformance agree on every case: status, message, expectations", async () => {
  // No readCache (write: cases skipped before running), capability skips,
  // real failures; one failure and one passing case listed as known.
  const definition = faultyBackend("hiddenRoundHalfAway");
  const filter = "fp8_e4m3";
  const first = await runConformance(definition, { filter });
  const firstResults = first.targets[0].results;
  const listedFailure = firstResults.find((r) => r.status === "failed")!;
  const listedPass = firstResults.find((r) => r.status === "passed")!;
  const expectations = {
    [listedFailure.address]: "known",
    [listedPass.address]: "known",
  };
  const report = await runConformance(definition, { filter, expectations });
  const results = report.targets[0].results;
  const statuses = new Set(results.map((r) => r.status));
  assert.deepEqual([...statuses].sort(), ["failed", "passed", "skipped"]);

  const prefix = "conformance faulty/reference ";
  const registered = await register(definition, { filter, expectations });
  const seen = new Map<string, { outcome: string; message?: string }>();
  for (const t of registered) {
    const address = t.name.slice(prefix.length).split(" (ignored: ")[0];
    if (t.ignore) {
      seen.set(address, { outcome: "ignored", message: t.name });
      continue;
    }
    try {
      await t.fn();
      seen.set(address, { outcome: "ok" });
    } catch (error) {
      seen.set(address, {
        outcome: "threw",
        message: (error as Error).message,
      });
    }
  }
  assert.deepEqual([...seen.keys()], results.map((r) => r.address));
  for (const r of results) {
    const s = seen.get(r.address)!;
    if (r.status === "skipped") {
      assert.equal(s.outcome, "ignored", r.address);
      // The one wording that differs: how to include the long tier.
      const why = r.message!.replace("run with --long", "pass long: true");
      assert.ok(s.message!.endsWith(`(ignored: ${why})`), s.message);
    } else if (r.status === "failed" && !r.expectedFailure) {
      assert.deepEqual(s, { outcome: "threw", message: r.message }, r.address);
    } else if (r.address === listedPass.address) {
      assert.equal(s.outcome, "threw");
      assert.match(s.message!, /listed as a known failure but passed/);
    } else {
      assert.equal(s.outcome, "ok", r.address);
    }
  }
  assert.deepEqual(report.unexpectedPasses, [
    `reference ${listedPass.address}`,
  ]);
  assert.equal(
    report.unexpectedFailures,
    [...seen.values()].filter((s) => s.outcome === "threw").length - 1,
  );
});

Deno.test("registerConformanceTests fails the last case when dispose() throws, as runConformance counts it", async () => {
  const base = faultyBackend("none");
  const definition = {
    ...base,
    targets: base.targets.map((t) => ({
      ...t,
      create: async () => ({
        ...(await t.create()),
        dispose: () => Promise.reject(new Error("device lost")),
      }),
    })),
  };
  const filter = "contract:deterministic";
  const report = await runConformance(definition, { filter });
  assert.match(
    report.problems[0],
    /dispose\(\) of backend faulty .* device lost/,
  );
  const tests = await register(definition, { filter });
  assert.equal(tests.length, 1);
  await assert.rejects(
    tests[0].fn(),
    /dispose\(\) of backend faulty .* device lost/,
  );
});
