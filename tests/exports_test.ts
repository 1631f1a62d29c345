// The package's public surface: every deno.json export exists, imports,
// exports what its @module documentation names, and is linted by
// `deno task check`; the root stays the core contract.
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const config = JSON.parse(
  await Deno.readTextFile(new URL("deno.json", ROOT)),
) as { exports: Record<string, string>; tasks: Record<string, string> };

// Runtime symbols each entry must provide (types vanish at run time, so
// the list names values); a key export that moves or disappears fails here.
const KEY_SYMBOLS: Record<string, readonly string[]> = {
  ".": [
    "BACKEND_API_VERSION",
    "defineBackend",
    "BackendError",
    "codecFor",
    "DEFAULT_SCALES",
    "planBatch",
    "referenceAttention",
    "selectBackends",
    "BackendRegistry",
    "KvCacheManager",
  ],
  "./engine": ["Engine", "loadEngine", "Scheduler", "samplingParams"],
  "./conformance": ["registerConformanceTests", "runConformance"],
  "./backends": ["builtinRegistry"],
  "./backends/reference": [
    "default",
    "createReferenceBackend",
    "REFERENCE_CAPABILITIES",
  ],
  "./backends/xformers": [
    "default",
    "XFORMERS_CAPABILITIES",
    "XFORMERS_NATIVE_TARGET",
    "XFORMERS_WEBGPU_TARGET",
  ],
  "./backends/flashinfer": [
    "default",
    "FLASHINFER_CAPABILITIES",
    "FLASHINFER_SETTINGS",
  ],
  "./backends/fa3": ["default", "FA3_CAPABILITIES", "FA3_SETTINGS"],
  "./server": ["createApp", "startServer"],
};

/** The entry's `@module` JSDoc block (the first block that has the tag). */
function moduleDoc(text: string): string {
  for (const m of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    if (m[0].includes("@module")) return m[0];
  }
  return "";
}

Deno.test("deno.json lists exactly the documented entries", () => {
  assert.deepEqual(
    Object.keys(config.exports).sort(),
    Object.keys(KEY_SYMBOLS).sort(),
    "a new export needs its key symbols listed in tests/exports_test.ts",
  );
});

for (const [path, file] of Object.entries(config.exports)) {
  Deno.test(`export "${path}" (${file}) imports and has its key symbols and those its @module doc names`, async () => {
    const url = new URL(file, ROOT);
    const text = await Deno.readTextFile(url); // throws when the file is missing
    const doc = moduleDoc(text);
    assert.notEqual(doc, "", `${file} has no @module JSDoc block`);
    const mod = await import(url.href);
    for (const name of KEY_SYMBOLS[path] ?? []) {
      assert.ok(name in mod, `${file} does not export ${name}`);
    }
    // `{@linkcode Engine.create}` names the export Engine.
    for (const m of doc.matchAll(/\{@link(?:code)?\s+([A-Za-z_$][\w$]*)/g)) {
      assert.ok(
        m[1] in mod,
        `${file}'s @module doc links ${m[1]}, which it does not export`,
      );
    }
  });
}

Deno.test("the package root is the core contract: no engine, conformance or built-in registry", async () => {
  const root = await import(new URL(config.exports["."], ROOT).href);
  for (
    const name of [
      "loadEngine",
      "Engine",
      "registerConformanceTests",
      "runConformance",
      "builtinRegistry",
      "createReferenceBackend",
    ]
  ) {
    assert.ok(
      !(name in root),
      `mod.ts exports ${name}: import it from its subpath`,
    );
  }
});

Deno.test("deno task check runs deno doc --lint on every export, together", () => {
  const m = config.tasks.check.match(/deno doc --lint ((?:\S+\.ts ?)+)/);
  assert.ok(m, "the check task has no `deno doc --lint FILES` step");
  // One invocation: a type one entry exports counts as public for the others.
  const linted = m[1].trim().split(/\s+/).map((f) => f.replace(/^\.\//, ""))
    .sort();
  const exported = Object.values(config.exports).map((f) =>
    f.replace(/^\.\//, "")
  ).sort();
  assert.deepEqual(linted, exported);
});
