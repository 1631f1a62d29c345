import assert from "node:assert/strict";
import { padSlotMapping } from "./pad_slot_mapping.ts";

Deno.test("padSlotMapping() fills the extra entries with -1", () => {
  assert.deepEqual([...padSlotMapping(Int32Array.of(7, 8, 9), 5)], [
    7,
    8,
    9,
    -1,
    -1,
  ]);
});

Deno.test("padSlotMapping() returns a copy when no padding is needed", () => {
  const slots = Int32Array.of(1, 2);
  const padded = padSlotMapping(slots, 2);
  assert.deepEqual([...padded], [1, 2]);
  assert.notEqual(padded, slots);
});

Deno.test("padSlotMapping() refuses a length shorter than the mapping", () => {
  assert.throws(
    () => padSlotMapping(Int32Array.of(1, 2, 3), 2),
    /Cannot pad 3 slots to length 2: pass an integer of at least 3/,
  );
  assert.throws(() => padSlotMapping(Int32Array.of(1), 2.5), /length 2.5/);
});
