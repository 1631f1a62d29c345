import assert from "node:assert/strict";
import { mulberry32 } from "./prng.ts";

Deno.test("mulberry32() repeats the same sequence for the same seed", () => {
  const a = mulberry32(123);
  const b = mulberry32(123);
  for (let i = 0; i < 1000; i++) assert.equal(a(), b());
});

Deno.test("mulberry32() gives different sequences for different seeds", () => {
  const a = mulberry32(1);
  const b = mulberry32(2);
  const same = Array.from({ length: 100 }, () => a() === b()).filter(Boolean);
  assert.ok(same.length < 5, `${same.length} equal draws of 100`);
});

Deno.test("mulberry32() returns numbers in [0, 1) spread over the range", () => {
  const next = mulberry32(7);
  const buckets = new Array(10).fill(0);
  for (let i = 0; i < 10_000; i++) {
    const x = next();
    assert.ok(x >= 0 && x < 1, `draw ${i} is ${x}`);
    buckets[Math.floor(x * 10)]++;
  }
  for (const count of buckets) {
    assert.ok(count > 800 && count < 1200, `${buckets}`);
  }
});

Deno.test("mulberry32() refuses a non-finite seed", () => {
  assert.throws(() => mulberry32(NaN), /Cannot seed mulberry32 with NaN/);
});
