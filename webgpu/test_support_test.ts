// The shared device-test harness catches what it exists to catch: a
// backend that reads the right slots passes, one that ignores the block
// table reads poisoned (NaN) slots and fails with Infinity, and a backend's
// plan() is what attend() receives. The harness runs any contract backend;
// a host-array fake keeps this test off the GPU.
import assert from "node:assert/strict";
import type {
  AttentionBackend,
  LayerCache,
  WriteInput,
} from "../core/backend.ts";
import type { PlannedBatch } from "../core/batch.ts";
import type { LayerConfig } from "../core/layer.ts";
import { referenceAttention } from "../core/reference_attention.ts";
import {
  layerOf,
  maxAbsError,
  runScenarioOn,
  type ScenarioBackend,
  shuffledBlockIds,
} from "./test_support.ts";

interface FakeCache extends LayerCache {
  readonly keys: Float32Array;
  readonly values: Float32Array;
}

type FakePlan = PlannedBatch & { readonly planned: true };

/** fp32 slots on the host; `contiguous` reads slot j of a sequence at j, ignoring its blocks. */
function fakeBackend(contiguous: boolean) {
  const plans: PlannedBatch[] = [];
  const attended: PlannedBatch[] = [];
  const rowOf = (c: FakeCache) => c.config.numKvHeads * c.config.headDim;
  const read = (c: FakeCache, slots: Int32Array) => {
    const row = rowOf(c);
    const keys = new Float32Array(slots.length * row);
    const values = new Float32Array(slots.length * row);
    slots.forEach((s, i) => {
      keys.set(c.keys.subarray(s * row, (s + 1) * row), i * row);
      values.set(c.values.subarray(s * row, (s + 1) * row), i * row);
    });
    return { keys, values };
  };
  const backend: ScenarioBackend<FakeCache, FakePlan> = {
    createCache(config: LayerConfig, { numBlocks }) {
      const n = numBlocks * config.blockSize * config.numKvHeads *
        config.headDim;
      return {
        config,
        numBlocks,
        keys: new Float32Array(n),
        values: new Float32Array(n),
      };
    },
    write(c, input: WriteInput) {
      const row = rowOf(c);
      input.slotMapping.forEach((s, t) => {
        if (s < 0) return;
        c.keys.set(input.keys.subarray(t * row, (t + 1) * row), s * row);
        c.values.set(input.values.subarray(t * row, (t + 1) * row), s * row);
      });
    },
    plan(batch) {
      plans.push(batch);
      return { ...batch, planned: true };
    },
    attend(c, plan, { query, out }) {
      attended.push(plan);
      const { blockSize, maxBlocksPerSeq } = plan;
      const seqs = Array.from(plan.seqLens, (len, s) =>
        read(
          c,
          Int32Array.from({ length: len }, (_, j) =>
            contiguous ? j : plan.blockTables[
                  s * maxBlocksPerSeq + Math.floor(j / blockSize)
                ] * blockSize + j % blockSize),
        ));
      out.set(
        referenceAttention(c.config, {
          batch: plan,
          query,
          keys: seqs.map((r) => r.keys),
          values: seqs.map((r) => r.values),
        }).out,
      );
    },
    readCache: (c, slots) => read(c, slots),
  };
  return { backend, plans, attended };
}

const SPEC = { seqLens: [5, 37], queryLens: [1, 4], seed: 3 };

Deno.test("runScenarioOn: a correct backend matches the oracle, through its plan()", async () => {
  const { backend, plans, attended } = fakeBackend(false);
  const r = await runScenarioOn(backend, layerOf({}), SPEC);
  assert.ok(r.maxAbsError < 1e-6, r.report(1e-6));
  assert.equal(plans.length, 1);
  assert.equal(attended[0], r.plan);
  assert.equal(r.plan.planned, true);
});

Deno.test("runScenarioOn: a backend that ignores the block table reads poison", async () => {
  const { backend } = fakeBackend(true);
  const r = await runScenarioOn(backend, layerOf({}), SPEC);
  assert.equal(r.maxAbsError, Infinity);
  assert.match(r.report(1e-3), /max \|diff\| Infinity > 0.001:\n {2}token 0/);
});

Deno.test("shuffledBlockIds is a permutation; maxAbsError counts NaN as Infinity", () => {
  const ids = shuffledBlockIds(() => 0.5, 9);
  assert.deepEqual([...ids].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.notDeepEqual(ids, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(
    maxAbsError(Float32Array.of(1, 2), Float64Array.of(1, 2.5)),
    0.5,
  );
  assert.equal(
    maxAbsError(Float32Array.of(NaN, 2), Float64Array.of(1, 2)),
    Infinity,
  );
});

// A contract backend type-checks as a scenario backend once it has readCache.
const _typed: ScenarioBackend = {} as AttentionBackend & {
  readCache: NonNullable<AttentionBackend["readCache"]>;
};
