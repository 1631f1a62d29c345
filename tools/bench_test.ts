import assert from "node:assert/strict";
import { KINDS } from "./bench.ts";

const root = new URL("../", import.meta.url);

Deno.test("every benchmark script is a kind of deno task bench", async () => {
  // A script is a deno bench file (*_bench.ts) or a module with a main(args):
  // docs quote `deno task bench <kind>`, so none may be runnable only by path.
  const scripts: string[] = [];
  for (const dir of ["bench", "engine", "server", "tools"]) {
    for await (const e of Deno.readDir(new URL(`${dir}/`, root))) {
      if (!e.isFile || !e.name.endsWith(".ts")) continue;
      const path = `${dir}/${e.name}`;
      const text = await Deno.readTextFile(new URL(path, root));
      if (
        e.name.endsWith("_bench.ts") ||
        (dir === "bench" && /export async function main\(/.test(text))
      ) scripts.push(path);
    }
  }
  const registered = new Set(Object.values(KINDS).map((k) => k.source));
  assert.deepEqual(scripts.filter((s) => !registered.has(s)).sort(), []);
  assert.ok(scripts.length >= 7, scripts.join(", "));
});

Deno.test("the moved benchmarks refuse a bad flag with exit status 2", async () => {
  assert.equal(await KINDS["fa3-decode"].run(["--reps", "0"]), 2);
  assert.equal(await KINDS.forward.run(["--tokens", "many"]), 2);
  assert.equal(await KINDS["model-ops"].run(["--fast"]), 2);
});
