// The runner and the command line around the cases: a run that checks
// nothing fails, a hang is reported with its case and phase (even one that
// blocks the event loop), and registerConformanceTests says the same things
// as failing tests.
import assert from "node:assert/strict";
import referenceBackend from "../backends/reference/mod.ts";
import { registerConformanceTests } from "../conformance/register.ts";
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
