import assert from "node:assert/strict";
import { blocksForBudget } from "./blocks_for_budget.ts";

Deno.test("blocksForBudget() rounds down to whole blocks", () => {
  assert.equal(blocksForBudget(10_000, 4096), 2);
  assert.equal(blocksForBudget(4096, 4096), 1);
  assert.equal(blocksForBudget(1.5e9, 1e6), 1500);
});

Deno.test("blocksForBudget() gives an 8-bit cache twice the blocks of a 16-bit one", () => {
  const elements = 2 * 16 * 8 * 128;
  assert.equal(
    blocksForBudget(1 << 30, elements * 1),
    2 * blocksForBudget(1 << 30, elements * 2),
  );
});

Deno.test("blocksForBudget() says how many bytes one block needs when the budget is too small", () => {
  assert.throws(
    () => blocksForBudget(1000, 4096),
    (e: Error) =>
      e instanceof RangeError &&
      e.message.includes("budget of 1000 bytes is smaller than one block") &&
      e.message.includes("one block needs 4096 bytes") &&
      e.message.includes("--kv-cache-memory"),
  );
});

Deno.test("blocksForBudget() refuses non-positive and non-finite inputs", () => {
  for (const bad of [0, -1, NaN, Infinity]) {
    assert.throws(
      () => blocksForBudget(bad, 4096),
      new RegExp(
        `budget must be a positive finite number of bytes, got ${bad}`,
      ),
    );
    assert.throws(
      () => blocksForBudget(1e9, bad),
      new RegExp(
        `bytes per block must be a positive finite number, got ${bad}`,
      ),
    );
  }
});
