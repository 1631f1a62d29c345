/**
 * `deno task build:native`: builds native/kvplug_native.node with the
 * napi-rs CLI, streaming cargo's output. Exits 1 with the fix when cargo or
 * npx is missing or the build fails.
 *
 * @module
 */

import { buildNative } from "../native/build.ts";
import { NativeBuildError } from "../native/errors.ts";

export {
  checkAddonFreshness,
  ensureNativeBuilt,
  type NativeBuildOptions,
} from "../native/build.ts";

if (import.meta.main) {
  try {
    const { addonPath, seconds } = await buildNative();
    console.log(`Built ${addonPath} in ${seconds.toFixed(1)} s`);
  } catch (error) {
    if (!(error instanceof NativeBuildError)) throw error;
    console.error(error.message);
    Deno.exit(1);
  }
}
