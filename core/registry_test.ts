import assert from "node:assert/strict";
import referenceBackend from "../backends/reference/mod.ts";
import { BackendDefinitionError } from "./define_backend.ts";
import {
  BackendLoadError,
  BackendRegistry,
  loadBackendModule,
} from "./registry.ts";

const fixture = (name: string) =>
  new URL(`../tests/fixtures/${name}`, import.meta.url).href;

Deno.test("BackendRegistry.load() loads a built-in backend by name", async () => {
  const registry = new BackendRegistry({
    reference: () => Promise.resolve(referenceBackend),
  });
  assert.equal((await registry.load("reference")).name, "reference");
});

Deno.test("BackendRegistry.load() names the valid options for an unknown backend", async () => {
  const registry = new BackendRegistry({
    reference: () => Promise.resolve(referenceBackend),
  });
  await assert.rejects(
    registry.load("flashattn"),
    (e: Error) => {
      assert.ok(e instanceof BackendLoadError);
      assert.equal(
        e.message,
        'Backend "flashattn" is not registered: pass a module path (./my_backend.ts) or one of reference',
      );
      return true;
    },
  );
});

Deno.test("loadBackendModule() loads a third-party backend by path", async () => {
  const def = await loadBackendModule(fixture("backend_ok.ts"));
  assert.equal(def.name, "my_backend");
});

Deno.test("loadBackendModule() resolves a relative path against the working directory", async () => {
  const cwd = Deno.cwd();
  try {
    Deno.chdir(new URL("../tests/fixtures/", import.meta.url).pathname);
    assert.equal(
      (await loadBackendModule("./backend_ok.ts")).name,
      "my_backend",
    );
  } finally {
    Deno.chdir(cwd);
  }
});

Deno.test("loadBackendModule() says what a module must export when it exports no backend", async () => {
  await assert.rejects(
    loadBackendModule(fixture("backend_no_export.ts")),
    /does not export a backend: add "export default defineBackend\(\{\.\.\.\}\)" \(exports found: somethingElse\)/,
  );
});

Deno.test("loadBackendModule() lists every contract problem of an invalid backend", async () => {
  await assert.rejects(
    loadBackendModule(fixture("backend_invalid.ts")),
    (e: Error) => {
      assert.ok(e instanceof BackendDefinitionError);
      assert.match(e.message, /targets\[0\]\.probe must be a function/);
      assert.match(
        e.message,
        /targets\[0\]\.capabilities\.kvDtypes must list some of fp32/,
      );
      return true;
    },
  );
});

Deno.test("loadBackendModule() reports a module that throws while loading, with the cause", async () => {
  await assert.rejects(
    loadBackendModule(fixture("backend_throws.ts")),
    (e: Error) => {
      assert.ok(e instanceof BackendLoadError);
      assert.match(
        e.message,
        /Cannot load backend module .*backend_throws\.ts: .*GPU driver exploded/,
      );
      assert.ok(e.cause instanceof Error);
      return true;
    },
  );
  await assert.rejects(
    loadBackendModule("./no/such/module.ts"),
    /Cannot load backend module \.\/no\/such\/module\.ts/,
  );
});
