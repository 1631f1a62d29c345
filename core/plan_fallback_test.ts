import assert from "node:assert/strict";
import referenceBackend from "../backends/reference/mod.ts";
import type { AttentionBackend } from "./backend.ts";
import { planBatch, type PlannedBatch } from "./batch.ts";
import { defineBackend } from "./define_backend.ts";
import { withPlan } from "./plan_fallback.ts";

const batch = planBatch({
  queryStartLoc: Int32Array.of(0, 1),
  seqLens: Int32Array.of(3),
  blockTables: Int32Array.of(4),
  maxBlocksPerSeq: 1,
  blockSize: 16,
});

// A backend instance without plan whose attend reads a #private field.
class NoPlan {
  readonly name = "noplan";
  readonly target = "reference";
  #seen = 0;
  attend(_cache: unknown, plan: PlannedBatch) {
    this.#seen += plan.numTokens;
    return this.#seen;
  }
}
const asBackend = (x: object) => x as unknown as AttentionBackend;

Deno.test("withPlan() installs the identity plan on an instance without one, once", () => {
  const instance = asBackend(new NoPlan());
  const b = withPlan(instance);
  assert.equal(b, instance);
  assert.equal(b.plan(batch), batch);
  assert.equal(withPlan(b).plan, b.plan);
});

Deno.test("withPlan() keeps a backend's own plan", () => {
  const own = (x: PlannedBatch) => ({ ...x });
  const b = withPlan(
    asBackend({ name: "own", target: "reference", plan: own }),
  );
  assert.equal(b.plan, own);
});

Deno.test("withPlan() gives a frozen instance a view whose methods keep their own this", () => {
  const frozen = Object.freeze(new NoPlan());
  const b = withPlan(asBackend(frozen));
  assert.equal(b.plan(batch), batch);
  assert.equal((b as unknown as NoPlan).attend(null, batch), 1);
  assert.equal(b.name, "noplan");
});

Deno.test("withPlan() refuses a plan member that is not a function, naming the fix", () => {
  assert.throws(
    () => withPlan(asBackend({ name: "bad", target: "reference", plan: 3 })),
    /Backend "bad" \(reference\) has a plan member that is not a function \(number\): make plan a method/,
  );
});

Deno.test("create() through defineBackend() returns instances that always have plan()", async () => {
  const make = (async: boolean) =>
    defineBackend({
      ...referenceBackend,
      targets: [{
        ...referenceBackend.targets[0],
        create: () =>
          async
            ? Promise.resolve(asBackend(new NoPlan()))
            : asBackend(new NoPlan()),
      }],
    });
  for (const async of [false, true]) {
    const b = await make(async).targets[0].create();
    assert.equal(typeof b.plan, "function", `async create: ${async}`);
    assert.equal(b.plan!(batch), batch);
  }
});
