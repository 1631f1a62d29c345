/**
 * Shared by the native flashinfer tests: builds the addon first (skipping
 * with a visible reason only when cargo is absent or the addon lacks the
 * flashinfer kernels).
 *
 * @module
 */

import {
  CARGO_MISSING,
  ensureNativeBuilt,
  hasCommand,
} from "../../native/build.ts";
import { probeNativeAddon } from "../../native/mod.ts";

const hasCargo = await hasCommand("cargo");
if (hasCargo) await ensureNativeBuilt({ quiet: true });
const probe = probeNativeAddon();

/** Why the native tests cannot run here, or undefined when they can. */
export const SKIP_REASON: string | undefined = !probe.available
  ? (hasCargo ? probe.reason : CARGO_MISSING)
  : typeof probe.addon.flashinferRun !== "function"
  ? "native addon has no flashinfer kernels: rebuild with deno task build:native"
  : undefined;
if (SKIP_REASON) {
  console.warn(`flashinfer native tests ignored: ${SKIP_REASON}`);
}

/** `Deno.test`, ignored (with the reason in its name) when the addon is absent. */
export function nativeTest(name: string, fn: () => void): void {
  Deno.test({
    name: SKIP_REASON ? `${name} (ignored: ${SKIP_REASON})` : name,
    ignore: SKIP_REASON !== undefined,
    fn,
  });
}
