/**
 * Builds the native addon with the napi-rs CLI, and rebuilds it only when
 * it is missing or older than its sources. Used by tools/build_native.ts,
 * by tests and by anything that wants the addon before loading it.
 *
 * Needs `--allow-read --allow-write --allow-env --allow-run`.
 *
 * @module
 */

import { NativeBuildError } from "./errors.ts";
import { NATIVE_ADDON_PATH, NATIVE_CRATE_DIR } from "./paths.ts";

/** The napi-rs CLI the build runs through npx (pinned: it works offline once cached). */
export const NAPI_CLI = "@napi-rs/cli@3.10.12";

/** The message when cargo is missing; also the reason `ensureNativeBuilt()` gives. */
export const CARGO_MISSING =
  "cargo was not found: install Rust (rustup or apt-get install cargo) or run without the native target";

/** The message when npx is missing. */
export const NPX_MISSING =
  "npx was not found: install Node.js and npm (apt-get install npm) to run the napi build";

/** Options for {@linkcode buildNative}, {@linkcode ensureNativeBuilt} and {@linkcode checkAddonFreshness}. */
export interface NativeBuildOptions {
  /**
   * Capture the build output instead of streaming it; it is still shown if
   * the build fails.
   *
   * @default false
   */
  quiet?: boolean;
  /**
   * The crate directory, holding Cargo.toml, package.json and src/.
   *
   * @default NATIVE_CRATE_DIR (native/)
   */
  crateDir?: string;
  /**
   * Where the built addon goes.
   *
   * @default NATIVE_ADDON_PATH (native/kvplug_native.node)
   */
  addonPath?: string;
}

/** Whether the addon is up to date, and why (or why not). */
export interface AddonFreshness {
  /** True when the addon exists and is newer than every source. */
  readonly fresh: boolean;
  /** E.g. `native addon is missing: <path>` or `src/lib.rs is newer than the native addon`. */
  readonly reason: string;
}

async function mtimeOf(path: string): Promise<number | undefined> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? 0;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

async function* sourceFiles(crateDir: string): AsyncGenerator<string> {
  for (const name of ["Cargo.toml", "build.rs"]) yield name;
  const stack = ["src"];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    try {
      for await (const entry of Deno.readDir(`${crateDir}/${dir}`)) {
        const path = `${dir}/${entry.name}`;
        if (entry.isDirectory) stack.push(path);
        else yield path;
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
}

/**
 * Compares the addon's modification time with Cargo.toml, build.rs and
 * every file under src/.
 *
 * @param options Which crate and addon to compare.
 * @returns Whether the addon is fresh, and why.
 *
 * @example A missing addon is never fresh
 * ```ts
 * import { checkAddonFreshness } from "./build.ts";
 * import assert from "node:assert/strict";
 *
 * const freshness = await checkAddonFreshness({ addonPath: "/nonexistent/kvplug_native.node" });
 * assert.equal(freshness.fresh, false);
 * assert.match(freshness.reason, /native addon is missing/);
 * ```
 */
export async function checkAddonFreshness(
  options: NativeBuildOptions = {},
): Promise<AddonFreshness> {
  const crateDir = options.crateDir ?? NATIVE_CRATE_DIR;
  const addonPath = options.addonPath ?? NATIVE_ADDON_PATH;
  const built = await mtimeOf(addonPath);
  if (built === undefined) {
    return { fresh: false, reason: `native addon is missing: ${addonPath}` };
  }
  for await (const source of sourceFiles(crateDir)) {
    const changed = await mtimeOf(`${crateDir}/${source}`);
    if (changed !== undefined && changed > built) {
      return {
        fresh: false,
        reason: `${source} is newer than the native addon`,
      };
    }
  }
  return { fresh: true, reason: `native addon is up to date: ${addonPath}` };
}

/**
 * Whether `command --version` runs: false when the command is not on PATH.
 *
 * @param command A program name, e.g. `cargo`.
 */
export async function hasCommand(command: string): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(command, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Runs `npx -y -p @napi-rs/cli@3.10.12 napi build --release` in the crate
 * directory, then moves the .node file to `addonPath` with an atomic rename,
 * so a process that already loaded the old file is not disturbed.
 *
 * @param options Output and paths.
 * @returns The addon path and the build time in seconds.
 * @throws {NativeBuildError} When cargo or npx is missing, or the build fails.
 *
 * @example Rebuilding (slow: compiles the crate)
 * ```ts ignore
 * import { buildNative } from "./build.ts";
 *
 * const { addonPath, seconds } = await buildNative();
 * console.log(`built ${addonPath} in ${seconds.toFixed(1)} s`);
 * ```
 */
export async function buildNative(
  options: NativeBuildOptions = {},
): Promise<{ addonPath: string; seconds: number }> {
  const crateDir = options.crateDir ?? NATIVE_CRATE_DIR;
  const addonPath = options.addonPath ?? NATIVE_ADDON_PATH;
  if (!await hasCommand("cargo")) throw new NativeBuildError(CARGO_MISSING);
  if (!await hasCommand("npx")) throw new NativeBuildError(NPX_MISSING);
  // One output directory per build: concurrent builds never share a file.
  const outDir = `target/napi-out-${Deno.pid}-${crypto.randomUUID()}`;
  const args = [
    "-y",
    "-p",
    NAPI_CLI,
    "napi",
    "build",
    "--release",
    "--output-dir",
    outDir,
  ];
  const started = performance.now();
  const output = await new Deno.Command("npx", {
    args,
    cwd: crateDir,
    env: { npm_config_loglevel: "error", npm_config_update_notifier: "false" },
    stdout: options.quiet ? "piped" : "inherit",
    stderr: options.quiet ? "piped" : "inherit",
  }).output();
  if (!output.success) {
    const decoder = new TextDecoder();
    const log = options.quiet
      ? `\n${decoder.decode(output.stderr)}${decoder.decode(output.stdout)}`
      : "";
    const command = `npx ${args.join(" ")}`;
    throw new NativeBuildError(
      `Native build failed with exit code ${output.code}: ${command} (in ${crateDir}): fix the errors it printed and run deno task build:native again${log}`,
    );
  }
  const builtPath = `${crateDir}/${outDir}/kvplug_native.node`;
  await Deno.rename(builtPath, addonPath);
  await Deno.remove(`${crateDir}/${outDir}`, { recursive: true });
  return { addonPath, seconds: (performance.now() - started) / 1000 };
}

const pending = new Map<string, Promise<{ built: boolean; reason: string }>>();

/**
 * Builds the addon if it is missing or stale and cargo is present.
 * Concurrent calls for one addon path in one process share a single build.
 *
 * @param options Output and paths.
 * @returns `built: true` with what was stale, or `built: false` with why not:
 * up to date, or cargo or npx missing.
 * @throws {NativeBuildError} When a needed build fails.
 *
 * @example Before loading (may compile the crate)
 * ```ts ignore
 * import { ensureNativeBuilt } from "./build.ts";
 * import { loadNativeAddon } from "./mod.ts";
 *
 * const { built, reason } = await ensureNativeBuilt({ quiet: true });
 * console.log(built ? `rebuilt: ${reason}` : reason);
 * loadNativeAddon();
 * ```
 */
export function ensureNativeBuilt(
  options: NativeBuildOptions = {},
): Promise<{ built: boolean; reason: string }> {
  const addonPath = options.addonPath ?? NATIVE_ADDON_PATH;
  let result = pending.get(addonPath);
  if (!result) {
    result = ensure(options).finally(() => pending.delete(addonPath));
    pending.set(addonPath, result);
  }
  return result;
}

async function ensure(
  options: NativeBuildOptions,
): Promise<{ built: boolean; reason: string }> {
  const freshness = await checkAddonFreshness(options);
  if (freshness.fresh) return { built: false, reason: freshness.reason };
  if (!await hasCommand("cargo")) {
    return { built: false, reason: CARGO_MISSING };
  }
  if (!await hasCommand("npx")) return { built: false, reason: NPX_MISSING };
  await buildNative(options);
  return { built: true, reason: freshness.reason };
}
