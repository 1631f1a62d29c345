import assert from "node:assert/strict";
import type { AttentionBackend, LayerCache } from "./backend.ts";
import {
  BackendDisposedError,
  BackendShapeError,
  ForeignHandleError,
} from "./backend_errors.ts";
import { guardBackend, unguardedForTests } from "./backend_guard.ts";
import { planBatch } from "./batch.ts";
import { UnsupportedLayerError } from "./capabilities.ts";
import { defineBackend } from "./define_backend.ts";
import type { LayerConfig } from "./layer.ts";
import { REFERENCE_CAPABILITIES } from "../backends/reference/mod.ts";

const LAYER: LayerConfig = {
  index: 3,
  kind: "full",
  numQHeads: 2,
  numKvHeads: 1,
  headDim: 2,
  scale: 1,
  kvDtype: "fp16",
  blockSize: 4,
};
const SCALES = { kScale: 1, vScale: 1, kZeroPoint: 0, vZeroPoint: 0 };
const OPTIONS = { numBlocks: 2, scales: SCALES };
const PLAN = planBatch({
  queryStartLoc: Int32Array.of(0, 1),
  seqLens: Int32Array.of(1),
  blockTables: Int32Array.of(1),
  maxBlocksPerSeq: 1,
  blockSize: 4,
});

/** A backend with no checks of its own that records every call it sees. */
function spy(asyncMembers = false) {
  const calls: string[] = [];
  const wrap = <T>(v: T) => asyncMembers ? Promise.resolve(v) : v;
  const backend: AttentionBackend = {
    name: "spy",
    target: "reference",
    version: "0",
    capabilities: REFERENCE_CAPABILITIES,
    cacheBytesPerBlock: () => (calls.push("cacheBytesPerBlock"), 1),
    createCache: (config, options): LayerCache => {
      calls.push("createCache");
      return wrap({ config, numBlocks: options.numBlocks }) as LayerCache;
    },
    write: () => void calls.push("write"),
    plan: (batch) => (calls.push("plan"), batch),
    attend: () => void calls.push("attend"),
    copyBlocks: () => void calls.push("copyBlocks"),
    readCache:
      () => (calls.push("readCache"),
        { keys: new Float32Array(), values: new Float32Array() }),
    disposeCache: () => void calls.push("disposeCache"),
    dispose: () => void calls.push("dispose"),
  };
  if (asyncMembers) {
    // Async functions, so the guard's refusals must reject, not throw.
    backend.createCache = async (config, options) => {
      await Promise.resolve();
      calls.push("createCache");
      return { config, numBlocks: options.numBlocks };
    };
    backend.write = async () => {
      await Promise.resolve();
      calls.push("write");
    };
  }
  return { backend, calls };
}

const write1 = {
  keys: new Float32Array(2),
  values: new Float32Array(2),
  slotMapping: Int32Array.of(0),
};
const io = () => ({ query: new Float32Array(4), out: new Float32Array(4) });

Deno.test("guard: after dispose() every member refuses but cacheBytesPerBlock, disposeCache and dispose, and the backend sees none of them", () => {
  const { backend, calls } = spy();
  const b = guardBackend(backend, {});
  const cache = b.createCache(LAYER, OPTIONS) as LayerCache;
  b.dispose();
  calls.length = 0;
  const refused: [string, () => unknown][] = [
    ["createCache", () => b.createCache(LAYER, OPTIONS)],
    ["write", () => b.write(cache, write1)],
    ["plan", () => b.plan!(PLAN)],
    ["attend", () => b.attend(cache, PLAN, io())],
    ["copyBlocks", () => b.copyBlocks(cache, Int32Array.of(0, 1))],
    ["readCache", () => b.readCache!(cache, Int32Array.of(0))],
  ];
  for (const [name, call] of refused) {
    assert.throws(
      call,
      (e) =>
        e instanceof BackendDisposedError &&
        e.message ===
          "Backend spy was disposed: create a new instance to keep using it",
      name,
    );
  }
  assert.deepEqual(calls, []);
  assert.equal(b.cacheBytesPerBlock(LAYER), 1);
  b.disposeCache!(cache);
  b.dispose();
  assert.deepEqual(calls, ["cacheBytesPerBlock", "disposeCache", "dispose"]);
});

Deno.test("guard: createCache runs assertSupported with the target's extraReasons before the backend", () => {
  const { backend, calls } = spy();
  const b = guardBackend(backend, {
    extraReasons: (l) => l.numQHeads === 2 ? ["GQA 2 is not fused"] : [],
  });
  assert.throws(
    () => b.createCache(LAYER, OPTIONS),
    (e) =>
      e instanceof UnsupportedLayerError &&
      e.message === "Backend spy cannot serve layer 3: GQA 2 is not fused",
  );
  assert.throws(
    () => b.createCache({ ...LAYER, headDim: 2048, numQHeads: 1 }, OPTIONS),
    /Backend spy cannot serve layer 3: head_dim 2048 is not supported/,
  );
  assert.deepEqual(calls, []);
});

Deno.test("guard: a cache from another instance, or released by disposeCache, is a ForeignHandleError", () => {
  const { backend, calls } = spy();
  const b = guardBackend(backend, {});
  const other = guardBackend(spy().backend, {});
  const theirs = other.createCache(LAYER, OPTIONS) as LayerCache;
  const mine = b.createCache(LAYER, OPTIONS) as LayerCache;
  calls.length = 0;
  for (
    const call of [
      () => b.write(theirs, write1),
      () => b.attend(theirs, PLAN, io()),
      () => b.copyBlocks(theirs, Int32Array.of(0, 1)),
      () => b.readCache!(theirs, Int32Array.of(0)),
      () => b.disposeCache!(theirs),
    ]
  ) {
    assert.throws(
      call,
      (e) =>
        e instanceof ForeignHandleError &&
        e.message ===
          "Backend spy (reference) was given a cache it did not create: pass the cache from its own createCache()",
    );
  }
  b.disposeCache!(mine);
  assert.throws(
    () => b.write(mine, write1),
    (e) =>
      e instanceof ForeignHandleError && e.layer === 3 &&
      e.message ===
        "Layer 3's cache was released by spy's disposeCache(): create a new cache to keep using it",
  );
  assert.throws(() => b.disposeCache!(mine), /released by spy/);
  assert.deepEqual(calls, ["disposeCache"]);
});

Deno.test("guard: write, attend, copyBlocks and readCache arguments go through the core checks", () => {
  const { backend, calls } = spy();
  const b = guardBackend(backend, {});
  const cache = b.createCache(LAYER, OPTIONS) as LayerCache;
  calls.length = 0;
  const bad: [RegExp, () => unknown][] = [
    [
      /keys has 1 elements, expected 2/,
      () => b.write(cache, { ...write1, keys: new Float32Array(1) }),
    ],
    [
      /slotMapping\[0\] is 8, outside the cache's 8 slots/,
      () => b.write(cache, { ...write1, slotMapping: Int32Array.of(8) }),
    ],
    [
      /query has 2 elements, expected 4/,
      () => b.attend(cache, PLAN, { ...io(), query: new Float32Array(2) }),
    ],
    [/blockTables\[0\]\[0\] is 5, outside the cache's 2 blocks/, () =>
      b.attend(
        cache,
        planBatch({ ...PLAN, blockTables: Int32Array.of(5) }),
        io(),
      )],
    [/planned for block size 8/, () =>
      b.attend(
        cache,
        planBatch({ ...PLAN, blockSize: 8 }),
        io(),
      )],
    [/odd length 1/, () => b.copyBlocks(cache, Int32Array.of(0))],
    [
      /Block 2 in pairs\[0\.\.1\] is outside 0\.\.1/,
      () => b.copyBlocks(cache, Int32Array.of(0, 2)),
    ],
    [/slots\[0\] is -1/, () => b.readCache!(cache, Int32Array.of(-1))],
  ];
  for (const [message, call] of bad) {
    assert.throws(
      call,
      (e) =>
        e instanceof BackendShapeError && e.layer === 3 &&
        message.test(e.message),
      String(message),
    );
  }
  assert.deepEqual(calls, []);
  // Good arguments reach the backend.
  b.write(cache, write1);
  b.attend(cache, b.plan!(PLAN), io());
  b.copyBlocks(cache, Int32Array.of(0, 1));
  b.readCache!(cache, Int32Array.of(0));
  assert.deepEqual(calls, [
    "write",
    "plan",
    "attend",
    "copyBlocks",
    "readCache",
  ]);
});

Deno.test("guard: an async member's refusal rejects, a sync member's throws", async () => {
  const { backend } = spy(true);
  const b = guardBackend(backend, {});
  const cache = await b.createCache(LAYER, OPTIONS);
  await b.write(cache, write1);
  let result: unknown;
  assert.doesNotThrow(() => {
    result = b.write(cache, { ...write1, slotMapping: Int32Array.of(9) });
  });
  await assert.rejects(result as Promise<void>, BackendShapeError);
  assert.throws(() => b.copyBlocks(cache, Int32Array.of(0)), /odd length/);
  b.dispose();
  const refused = b.createCache(LAYER, OPTIONS);
  assert.ok(refused instanceof Promise);
  await assert.rejects(refused, BackendDisposedError);
});

Deno.test("guard: members it does not know read through to the instance; guarding twice is one guard", () => {
  class Extra {
    #kernel = "avx2";
    readonly name = "extra";
    readonly target = "native" as const;
    readonly version = "0";
    readonly capabilities = REFERENCE_CAPABILITIES;
    counter = 0;
    get lastKernelPath() {
      return this.#kernel;
    }
    bump() {
      return ++this.counter;
    }
    cacheBytesPerBlock() {
      return 1;
    }
    createCache(config: LayerConfig) {
      return { config, numBlocks: 1 };
    }
    write() {}
    attend() {}
    copyBlocks() {}
    dispose() {}
  }
  const inner = new Extra();
  const b = guardBackend(inner, {});
  assert.equal(b.lastKernelPath, "avx2");
  assert.equal(b.bump(), 1);
  inner.counter = 5;
  assert.equal(b.counter, 5);
  assert.equal(guardBackend(b, {}), b);
  assert.equal(
    "readCache" in b,
    false,
    "an absent optional member stays absent",
  );
});

Deno.test("guard: defineBackend and the registry guard every instance; unguardedForTests opts a test target out", async () => {
  const make = (mark: boolean) => {
    const target = {
      target: "reference" as const,
      capabilities: REFERENCE_CAPABILITIES,
      probe: () => ({ available: true as const }),
      create: () => spy().backend,
    };
    return defineBackend({
      apiVersion: 1,
      name: "spy",
      version: "0",
      description: "guard test",
      targets: [mark ? unguardedForTests(target) : target],
    });
  };
  const guarded = await make(false).targets[0].create();
  guarded.dispose();
  assert.throws(
    () => guarded.createCache(LAYER, OPTIONS),
    BackendDisposedError,
  );
  const raw = await make(true).targets[0].create();
  raw.dispose();
  assert.doesNotThrow(() => raw.createCache(LAYER, OPTIONS));
});

Deno.test("guard: the block range is found once per plan, and the same plan is still refused by a smaller cache", () => {
  const b = guardBackend(spy().backend, {});
  const big = b.createCache(LAYER, OPTIONS) as LayerCache;
  const small = b.createCache(LAYER, {
    ...OPTIONS,
    numBlocks: 1,
  }) as LayerCache;
  b.attend(big, PLAN, io()); // PLAN reads block 1: inside 2 blocks
  assert.throws(
    () => b.attend(small, PLAN, io()),
    (e) =>
      e instanceof BackendShapeError &&
      /blockTables\[0\]\[0\] is 1, outside the cache's 1 blocks/.test(
        e.message,
      ),
  );
});

Deno.test("guard: an instance without plan plans as the identity", () => {
  const { backend } = spy();
  delete backend.plan;
  const b = guardBackend(backend, {});
  assert.equal(b.plan!(PLAN), PLAN);
  b.dispose();
  assert.throws(() => b.plan!(PLAN), BackendDisposedError);
});
