/**
 * The argument checks of the native fa3 backend, with the reference
 * backend's messages: everything the addon would refuse, said first in
 * terms a caller can act on (the addon checks again, so that a direct
 * call can never read out of bounds).
 *
 * @module
 */

import type { AttendInput, WriteInput } from "../../core/backend.ts";
import {
  checkAttendInput,
  checkCopyPairs,
  checkReadSlots,
  checkWriteInput,
} from "../../core/backend_checks.ts";
import {
  BackendDisposedError,
  ForeignHandleError,
} from "../../core/backend_errors.ts";
import type { PlannedBatch } from "../../core/batch.ts";
import { Fa3NativeCache } from "./native_cache.ts";

/** The checks, bound to one backend instance's disposed flag. */
export interface Fa3ArgChecks {
  /** Throws after dispose(), or for a cache another instance made. */
  live(cache?: unknown): void;
  /** Checks readCache slots. */
  readSlots(cache: Fa3NativeCache, slots: Int32Array): void;
  /** Checks a write (and liveness). */
  write(cache: Fa3NativeCache, input: WriteInput): void;
  /** Checks an attend's shapes and blocks (liveness is checked apart). */
  attend(cache: Fa3NativeCache, plan: PlannedBatch, input: AttendInput): void;
  /** Checks copyBlocks pairs (and liveness). */
  copyBlocks(cache: Fa3NativeCache, pairs: Int32Array): void;
}

const SELF = { name: "fa3", target: "native" } as const;
const AT = { backend: "fa3", target: "native" } as const;

/**
 * Checks for one backend instance.
 *
 * @example Usage
 * ```ts
 * import { checkFa3Args } from "./native_checks.ts";
 * import { BackendDisposedError } from "../../core/backend_errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => checkFa3Args(() => true).live(), BackendDisposedError);
 * ```
 */
export function checkFa3Args(disposed: () => boolean): Fa3ArgChecks {
  const live = (cache?: unknown) => {
    if (disposed()) throw new BackendDisposedError(AT);
    if (cache !== undefined && !(cache instanceof Fa3NativeCache)) {
      throw new ForeignHandleError(
        "Backend fa3 (native) was given a cache it did not create: pass the cache from its own createCache()",
        AT,
      );
    }
  };
  return {
    live,
    readSlots: (cache, slots) => checkReadSlots(SELF, cache, slots),
    write(cache, input) {
      live(cache);
      checkWriteInput(SELF, cache, input);
    },
    attend(cache, plan, input) {
      checkAttendInput(SELF, cache, {
        plan,
        queryLength: input.query.length,
        outLength: input.out.length,
      });
    },
    copyBlocks(cache, pairs) {
      live(cache);
      checkCopyPairs(SELF, cache, pairs);
    },
  };
}
