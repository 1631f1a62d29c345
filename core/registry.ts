/**
 * Finds backend definitions: built-ins by name, third-party modules by path
 * or URL (`--backend ./my_backend.ts`). The core knows no backend by name;
 * the table of built-ins is handed in (backends/builtin.ts), so dependencies
 * keep pointing down.
 *
 * @module
 */

import type { BackendDefinition } from "./backend.ts";
import {
  BackendDefinitionError,
  backendDefinitionProblems,
} from "./define_backend.ts";
import { gateSettings } from "./settings_schema.ts";

/** Loads one built-in backend's definition. */
export type BackendLoader = () => Promise<BackendDefinition>;

/** A backend that could not be found or loaded; the message says what to do. */
export class BackendLoadError extends Error {
  /** Creates the error; pass `{ cause }` to keep the underlying error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BackendLoadError";
  }
}

/**
 * True when a `--backend` value names a module rather than a built-in.
 *
 * @example Usage
 * ```ts
 * import { isModuleSpecifier } from "./registry.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isModuleSpecifier("./my_backend.ts"));
 * assert.ok(!isModuleSpecifier("flashinfer"));
 * ```
 */
export function isModuleSpecifier(value: string): boolean {
  return /^(\.{1,2}\/|\/|file:|https?:)/.test(value) ||
    /\.(ts|js|mjs|mts)$/.test(value);
}

/**
 * Imports a module and returns the backend definition it exports (as
 * `default` or as `backend`), validated against the contract.
 *
 * @example Usage
 * ```ts
 * import { loadBackendModule } from "./registry.ts";
 * import assert from "node:assert/strict";
 *
 * const def = await loadBackendModule(new URL("../backends/reference/mod.ts", import.meta.url).href);
 * assert.equal(def.name, "reference");
 * ```
 */
export async function loadBackendModule(
  specifier: string,
): Promise<BackendDefinition> {
  const url = /^(file:|https?:)/.test(specifier) ? specifier : new URL(
    specifier,
    `file://${Deno.cwd().replace(/\/?$/, "/")}`,
  ).href;
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (cause) {
    throw new BackendLoadError(
      `Cannot load backend module ${specifier}: ${
        (cause as Error).message ?? cause
      }`,
      { cause },
    );
  }
  const definition = mod.default ?? mod.backend;
  if (definition === undefined) {
    throw new BackendLoadError(
      `Module ${specifier} does not export a backend: add "export default defineBackend({...})" (exports found: ${
        Object.keys(mod).join(", ") || "none"
      })`,
    );
  }
  const problems = backendDefinitionProblems(definition);
  if (problems.length > 0) {
    throw new BackendDefinitionError(
      `Module ${specifier} exports an invalid backend:\n  - ${
        problems.join("\n  - ")
      }`,
    );
  }
  // Modules that skip defineBackend() get the same settings gate.
  return gateSettings(definition as BackendDefinition);
}

/** Built-in backends by name, plus third-party modules on request. */
export class BackendRegistry {
  #builtins: ReadonlyMap<string, BackendLoader>;

  /**
   * Creates a registry over the built-ins; modules need no registration.
   *
   * @param builtins Loaders by name, in priority order (the order `names` reports).
   */
  constructor(builtins: Readonly<Record<string, BackendLoader>>) {
    this.#builtins = new Map(Object.entries(builtins));
  }

  /** Names of the built-in backends, in priority order. */
  get names(): string[] {
    return [...this.#builtins.keys()];
  }

  /**
   * Loads a backend by built-in name or module path/URL.
   *
   * @example Usage
   * ```ts
   * import { BackendRegistry } from "./registry.ts";
   * import assert from "node:assert/strict";
   *
   * const registry = new BackendRegistry({});
   * await assert.rejects(registry.load("nope"), /not registered/);
   * ```
   */
  async load(nameOrPath: string): Promise<BackendDefinition> {
    if (isModuleSpecifier(nameOrPath)) return loadBackendModule(nameOrPath);
    const loader = this.#builtins.get(nameOrPath);
    if (loader === undefined) {
      throw new BackendLoadError(
        `Backend "${nameOrPath}" is not registered: pass a module path (./my_backend.ts) or one of ${
          this.names.join(", ")
        }`,
      );
    }
    const definition = await loader();
    if (definition.name !== nameOrPath) {
      throw new BackendLoadError(
        `Built-in backend "${nameOrPath}" loaded a definition named "${definition.name}": fix the built-in table`,
      );
    }
    return definition;
  }

  /** Loads every built-in backend. */
  loadAll(): Promise<BackendDefinition[]> {
    return Promise.all(this.names.map((n) => this.load(n)));
  }
}
