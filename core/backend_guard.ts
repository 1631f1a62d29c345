/**
 * The core's guard around a backend instance: the checks every backend used
 * to copy, applied once by the core before the backend sees a call. After
 * dispose() every member but cacheBytesPerBlock, disposeCache and dispose
 * throws {@linkcode BackendDisposedError}; createCache runs
 * {@linkcode assertSupported} with the target's extraReasons; a cache this
 * instance did not create, or one released by disposeCache, is a
 * {@linkcode ForeignHandleError}; write, attend, copyBlocks and readCache
 * arguments go through core/backend_checks.ts (lengths, slot and block
 * ranges, copy pairs). The settings gate applies it to every instance a
 * definition's create() returns through defineBackend() or the registry.
 *
 * @module
 */

import {
  type AttentionBackend,
  BACKEND_MEMBERS,
  type BackendTarget,
  type LayerCache,
} from "./backend.ts";
import { BackendDisposedError, ForeignHandleError } from "./backend_errors.ts";
import {
  checkAttendInput,
  checkCopyPairs,
  checkReadSlots,
  checkWriteInput,
} from "./backend_checks.ts";
import { assertBatchSupported, assertSupported } from "./capabilities.ts";
import type { PlannedBatch } from "./batch.ts";

/** What the guard reads of the target an instance came from. */
export type GuardTarget = Pick<BackendTarget, "extraReasons">;

// Members the guard wraps; everything else is forwarded to the instance.
const GUARDED = new Set<PropertyKey>(BACKEND_MEMBERS);

const guardedInstances = new WeakSet<object>();
const unguardedTargets = new WeakSet<object>();

/**
 * Marks a target whose instances the settings gate must not guard. For
 * tests only: the conformance mutants (tests/mutants/faulty_backend.ts)
 * plant missing disposal, support and extraReasons checks, and the suite
 * must still fail such a backend when it is reached unguarded (a third
 * party's direct instance). Never use it in a shipped backend. Returns the
 * same target.
 *
 * @example Usage
 * ```ts
 * import { unguardedForTests } from "./backend_guard.ts";
 * import assert from "node:assert/strict";
 *
 * const target = { target: "reference", capabilities: {} } as never;
 * assert.equal(unguardedForTests(target), target);
 * ```
 */
export function unguardedForTests<T extends object>(target: T): T {
  unguardedTargets.add(target);
  return target;
}

/**
 * Whether {@linkcode unguardedForTests} marked this target.
 *
 * @example Usage
 * ```ts
 * import { isUnguarded, unguardedForTests } from "./backend_guard.ts";
 * import assert from "node:assert/strict";
 *
 * const target = unguardedForTests({});
 * assert.equal(isUnguarded(target), true);
 * assert.equal(isUnguarded({}), false);
 * ```
 */
export function isUnguarded(target: object): boolean {
  return unguardedTargets.has(target);
}

// A check that fails inside an async member rejects, as the backend's own
// check at the top of an async function did; a sync member throws.
function isAsync(fn: unknown): boolean {
  return typeof fn === "function" &&
    fn.constructor?.name === "AsyncFunction";
}

/**
 * Returns a guarded view of `instance` (see the module doc). Members keep
 * their sync or async shape; members the guard does not know (a WebGPU
 * backend's encodeWrite, a getter such as lastKernelPath) are forwarded to
 * the instance. The checks only read the arguments, once per call: no
 * per-element work beyond core/backend_checks.ts, no allocation per call.
 * Idempotent: a guarded instance is returned as is.
 *
 * @example Usage
 * ```ts
 * import { guardBackend } from "./backend_guard.ts";
 * import { BackendDisposedError } from "./backend_errors.ts";
 * import { createReferenceBackend } from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const backend = guardBackend(createReferenceBackend(), {});
 * backend.dispose();
 * assert.throws(
 *   () => backend.createCache({} as never, {} as never),
 *   BackendDisposedError,
 * );
 * ```
 */
export function guardBackend<B extends AttentionBackend>(
  instance: B,
  target: GuardTarget,
): B {
  if (guardedInstances.has(instance)) return instance;
  const inner = instance as unknown as AttentionBackend<LayerCache>;
  const { name, capabilities } = inner;
  const self = { name, target: inner.target } as const;
  const at = { backend: name, target: inner.target } as const;
  const caches = new WeakSet<object>();
  const released = new WeakSet<object>();
  let disposed = false;

  const disposedError = () => new BackendDisposedError(at);
  const foreignError = (cache: LayerCache) =>
    released.has(cache)
      ? new ForeignHandleError(
        `Layer ${cache.config?.index}'s cache was released by ${name}'s disposeCache(): create a new cache to keep using it`,
        { ...at, layer: cache.config?.index },
      )
      : new ForeignHandleError(
        `Backend ${name} (${self.target}) was given a cache it did not create: pass the cache from its own createCache()`,
        at,
      );
  const live = (cache: LayerCache) => {
    if (disposed) throw disposedError();
    if (!caches.has(cache)) throw foreignError(cache);
  };
  // Runs `check`, then the member; a failed check throws or rejects as the
  // member would.
  const asyncOf = (key: keyof AttentionBackend) => isAsync(inner[key]);
  const fail = (async: boolean, error: unknown) => {
    if (async) return Promise.reject(error);
    throw error;
  };

  const remember = (cache: LayerCache) => {
    caches.add(cache);
    return cache;
  };
  const ownPlan = inner.plan;
  const createAsync = asyncOf("createCache");
  const writeAsync = asyncOf("write");
  const attendAsync = asyncOf("attend");
  const copyAsync = asyncOf("copyBlocks");
  const readAsync = asyncOf("readCache");

  const guarded: AttentionBackend<LayerCache> = {
    name,
    target: self.target,
    version: inner.version,
    capabilities,
    cacheBytesPerBlock: (config) => inner.cacheBytesPerBlock(config),
    createCache(config, options) {
      try {
        if (disposed) throw disposedError();
        assertSupported(
          name,
          capabilities,
          config,
          target.extraReasons?.(config),
        );
      } catch (e) {
        return fail(createAsync, e) as never;
      }
      const made = inner.createCache(config, options);
      return made instanceof Promise ? made.then(remember) : remember(made);
    },
    write(cache, input) {
      try {
        live(cache);
        checkWriteInput(self, cache, input);
      } catch (e) {
        return fail(writeAsync, e);
      }
      return inner.write(cache, input);
    },
    plan(batch) {
      if (disposed) throw disposedError();
      // Without a plan of its own the instance plans as the identity (the
      // core fallback, as withPlan() installs it).
      return ownPlan === undefined ? batch : ownPlan.call(inner, batch);
    },
    attend(cache, plan: PlannedBatch, input) {
      try {
        live(cache);
        assertBatchSupported(name, capabilities, plan);
        // O(1) per layer: the plan's highest block is found once per plan.
        const { config } = cache;
        const want = plan.numTokens * config.numQHeads * config.headDim;
        if (
          plan.blockSize !== config.blockSize ||
          input.query.length !== want || input.out.length !== want ||
          maxBlockRead(plan) >= cache.numBlocks
        ) {
          // The full check names the first bad value.
          checkAttendInput(self, cache, {
            plan,
            queryLength: input.query.length,
            outLength: input.out.length,
          });
        }
      } catch (e) {
        return fail(attendAsync, e);
      }
      return inner.attend(cache, plan, input);
    },
    copyBlocks(cache, pairs) {
      try {
        live(cache);
        checkCopyPairs(self, cache, pairs);
      } catch (e) {
        return fail(copyAsync, e);
      }
      return inner.copyBlocks(cache, pairs);
    },
    dispose() {
      disposed = true;
      return inner.dispose();
    },
  };
  if (inner.readCache) {
    const read = inner.readCache;
    guarded.readCache = (cache, slots) => {
      try {
        live(cache);
        checkReadSlots(self, cache, slots);
      } catch (e) {
        return fail(readAsync, e) as never;
      }
      return read.call(inner, cache, slots);
    };
  }
  if (inner.disposeCache) {
    const release = inner.disposeCache;
    guarded.disposeCache = (cache) => {
      // Exempt from the disposed check (dispose() may have released it
      // already), but never a foreign or twice-released cache.
      if (!caches.has(cache)) {
        return fail(isAsync(release), foreignError(cache));
      }
      caches.delete(cache);
      released.add(cache);
      return release.call(inner, cache);
    };
  }
  forwardTheRest(guarded, instance);
  guardedInstances.add(guarded);
  return guarded as unknown as B;
}

// The highest block id each plan's sequences read, once per plan (the
// engine attends one plan on every layer).
const maxBlocks = new WeakMap<PlannedBatch, number>();

function maxBlockRead(plan: PlannedBatch): number {
  let max = maxBlocks.get(plan);
  if (max === undefined) {
    max = -1;
    for (let s = 0; s < plan.numSeqs; s++) {
      const blocks = Math.ceil(plan.seqLens[s] / plan.blockSize);
      const row = s * plan.maxBlocksPerSeq;
      for (let b = 0; b < blocks; b++) {
        if (plan.blockTables[row + b] > max) max = plan.blockTables[row + b];
      }
    }
    maxBlocks.set(plan, max);
  }
  return max;
}

// Members the guard does not know (encodeWrite, readCodes, lastKernelPath)
// read through to the instance: methods bound once here (so #private
// fields still see their own `this`), other values by a getter.
function forwardTheRest(guarded: object, instance: object): void {
  for (
    let o: object | null = instance;
    o !== null && o !== Object.prototype;
    o = Object.getPrototypeOf(o)
  ) {
    for (const key of Reflect.ownKeys(o)) {
      if (GUARDED.has(key) || Object.hasOwn(guarded, key)) continue;
      const d = Object.getOwnPropertyDescriptor(o, key)!;
      if (key === "constructor") continue;
      if ("value" in d && typeof d.value === "function") {
        Object.defineProperty(guarded, key, {
          value: d.value.bind(instance),
          enumerable: d.enumerable,
        });
      } else {
        Object.defineProperty(guarded, key, {
          get: () => Reflect.get(instance, key),
          enumerable: d.enumerable,
        });
      }
    }
  }
}
