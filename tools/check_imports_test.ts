import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { checkImports } from "./check_imports.ts";

Deno.test("checkImports() finds no import pointing the wrong way in this tree", async () => {
  const root = fileURLToPath(new URL("..", import.meta.url));
  assert.deepEqual(await checkImports(root), []);
});

Deno.test("checkImports() names each import that points the wrong way", async () => {
  const root = await Deno.makeTempDir();
  const put = async (path: string, text: string) => {
    await Deno.mkdir(`${root}/${path.slice(0, path.lastIndexOf("/"))}`, {
      recursive: true,
    });
    await Deno.writeTextFile(`${root}/${path}`, text);
  };
  await put("server/main.ts", 'import { planSpec } from "../tools/plan.ts";\n');
  await put(
    "engine/bench.ts",
    'const m = await import("../bench/machine.ts");\n',
  );
  await put("backends/a/mod.ts", 'export * from "../b/kernels.ts";\n');
  await put("backends/builtin.ts", 'import a from "./a/mod.ts";\n');
  await put("core/x.ts", 'import type { E } from "../engine/engine.ts";\n');
  await put("core/x_test.ts", 'import r from "../backends/a/mod.ts";\n');
  await put("engine/ok.ts", 'import { x } from "../core/x.ts";\n');
  try {
    const found = await checkImports(root);
    assert.deepEqual(found.map((v) => `${v.file} ${v.specifier}`), [
      "core/x.ts ../engine/engine.ts",
      "engine/bench.ts ../bench/machine.ts",
      "server/main.ts ../tools/plan.ts",
      "backends/a/mod.ts ../b/kernels.ts",
    ]);
    assert.match(found[2].rule, /server\/ must not import tools\//);
    assert.match(found[3].rule, /never imports another backend/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
