/**
 * `deno run --allow-read tools/check_imports.ts`: fails (exit 1) when an
 * import points the wrong way between the repository's layers, listing each
 * offending file, the import and the rule, so that the layering stays
 * `tools/, bench/ -> server/ -> engine/ -> core/ <- backends/`:
 *
 * - core/ imports none of engine/, server/, backends/, tools/, bench/
 *   (its tests may use a backend as a fixture: core/*_test.ts may import
 *   backends/);
 * - engine/ and server/ import neither tools/ nor bench/;
 * - a backend (backends/X/) never imports another (backends/Y/); only the
 *   top-level registry (backends/builtin.ts) names them all.
 *
 * Usage examples inside JSDoc (doc tests) are not scanned: they are
 * written as a user's code. Part of `deno task check`.
 *
 * @module
 */

import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** One import that breaks a rule. */
export interface ImportViolation {
  /** The importing file, relative to the root. */
  readonly file: string;
  /** The specifier as written. */
  readonly specifier: string;
  /** The rule it breaks, and the fix. */
  readonly rule: string;
}

/** Top-level folders that core/ must not import. */
const ABOVE_CORE = ["engine", "server", "backends", "tools", "bench"];
/** Top-level folders that engine/ and server/ must not import. */
const ENTRY_POINTS = ["tools", "bench"];

// Static imports and re-exports (`import ... from "x"`, `export ... from
// "x"`, `import "x"`), `import type`, and dynamic `import("x")` with a
// literal specifier.
const SPECIFIER =
  /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["']([^"']+)["']/gm;

/**
 * The relative specifiers a module's text imports, outside JSDoc lines.
 *
 * @example Usage
 * ```ts
 * import { relativeImports } from "./check_imports.ts";
 * import assert from "node:assert/strict";
 *
 * const text = 'import { a } from "./a.ts";\nexport * from "../b.ts";\nconst c = await import("./c.ts");\n * import d from "../d.ts";';
 * assert.deepEqual(relativeImports(text), ["./a.ts", "../b.ts", "./c.ts"]);
 * ```
 */
export function relativeImports(text: string): string[] {
  const out: string[] = [];
  const code = text.split("\n").filter((line) => !/^\s*\*/.test(line))
    .join("\n");
  for (const m of code.matchAll(SPECIFIER)) {
    if (m[1].startsWith(".")) out.push(m[1]);
  }
  return out;
}

/**
 * The rule an import from `file` to `target` (both relative to the root,
 * with `/`) breaks, or undefined.
 *
 * @example Usage
 * ```ts
 * import { layerRule } from "./check_imports.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(layerRule("server/main.ts", "tools/plan.ts")!, /server\/ must not import tools\//);
 * assert.match(layerRule("backends/fa3/a.ts", "backends/xformers/b.ts")!, /another backend/);
 * assert.equal(layerRule("backends/builtin.ts", "backends/fa3/mod.ts"), undefined);
 * assert.equal(layerRule("engine/engine.ts", "core/backend.ts"), undefined);
 * assert.match(layerRule("core/selector.ts", "backends/reference/mod.ts")!, /core\/ must not import backends\//);
 * assert.equal(layerRule("core/selector_test.ts", "backends/reference/mod.ts"), undefined);
 * ```
 */
export function layerRule(file: string, target: string): string | undefined {
  const [from, fromSub] = file.split("/");
  const [to, toSub] = target.split("/");
  const fixture = to === "backends" && file.endsWith("_test.ts");
  if (from === "core" && ABOVE_CORE.includes(to) && !fixture) {
    return `core/ must not import ${to}/ (dependencies point down: ${to}/ builds on core/); move what core needs into core/, or invert the call (core takes it as a parameter)`;
  }
  if ((from === "engine" || from === "server") && ENTRY_POINTS.includes(to)) {
    return `${from}/ must not import ${to}/ (${to}/ holds command lines and benchmarks built on ${from}/); move the code ${from}/ needs into ${from}/ (or lower), and let ${to}/ import it from there`;
  }
  if (
    from === "backends" && to === "backends" && fromSub !== toSub &&
    file.split("/").length > 2 && target.split("/").length > 2
  ) {
    return `a backend never imports another backend (backends/${fromSub}/ imports backends/${toSub}/); move the shared code into core/ or a target library (native/, webgpu/)`;
  }
  return undefined;
}

/** Every .ts/.tsx file under `dir` (skipping build outputs). */
async function* sources(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) {
      if (entry.name === "target" || entry.name === "node_modules") continue;
      yield* sources(path);
    } else if (entry.isFile && /\.tsx?$/.test(entry.name)) {
      yield path;
    }
  }
}

/** Checks every module under `root`'s core/, engine/, server/, backends/. */
export async function checkImports(root: string): Promise<ImportViolation[]> {
  const violations: ImportViolation[] = [];
  for (const top of ["core", "engine", "server", "backends"]) {
    let files: string[] = [];
    try {
      files = await Array.fromAsync(sources(join(root, top)));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      throw error;
    }
    for (const path of files.sort()) {
      const file = relative(root, path).replaceAll("\\", "/");
      for (const specifier of relativeImports(await Deno.readTextFile(path))) {
        const target = relative(root, normalize(join(dirname(path), specifier)))
          .replaceAll("\\", "/");
        const rule = layerRule(file, target);
        if (rule) violations.push({ file, specifier, rule });
      }
    }
  }
  return violations;
}

if (import.meta.main) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const violations = await checkImports(root);
  for (const v of violations) {
    console.error(`${v.file}: imports "${v.specifier}": ${v.rule}`);
  }
  if (violations.length > 0) {
    console.error(
      `${violations.length} import(s) point the wrong way between layers`,
    );
    Deno.exit(1);
  }
}
