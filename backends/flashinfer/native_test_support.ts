/**
 * Shared by the native flashinfer tests: the native test gate
 * (native/test_support.ts) for the flashinfer kernels, which builds the
 * addon first and ignores the tests, with the reason, when it cannot run
 * them.
 *
 * @module
 */

import { nativeTestGate } from "../../native/test_support.ts";

const gate = await nativeTestGate("flashinfer", "flashinferRun");

/** Why the native tests cannot run here, or undefined when they can. */
export const SKIP_REASON: string | undefined = gate.skipReason;

/** `Deno.test`, ignored (with the reason in its name) when the addon is absent. */
export const nativeTest: typeof gate.test = gate.test;
