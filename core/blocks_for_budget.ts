/**
 * Turns a KV cache memory budget into a number of paged blocks.
 *
 * @module
 */

/**
 * How many whole blocks fit in a memory budget: `floor(budgetBytes /
 * bytesPerBlock)`. A backend reports `bytesPerBlock` for its own layout, so
 * an 8-bit cache, whose blocks are half the size, gets twice the blocks; that
 * larger effective batch is where 8-bit KV gains its throughput.
 *
 * @param budgetBytes Bytes set aside for the KV cache; a positive finite number.
 * @param bytesPerBlock Bytes one block takes in the backend's layout; a positive finite number.
 * @returns The number of blocks, at least 1.
 *
 * @example An 8-bit cache gets twice the blocks of a 16-bit one
 * ```ts
 * import { blocksForBudget } from "./blocks_for_budget.ts";
 * import assert from "node:assert/strict";
 *
 * // K and V, 16 tokens a block, 8 KV heads, head dim 128, 32 layers.
 * const elementsPerBlock = 2 * 16 * 8 * 128 * 32;
 * const budget = 4 * 1024 ** 3; // 4 GiB
 * const fp16 = blocksForBudget(budget, elementsPerBlock * 2);
 * const fp8 = blocksForBudget(budget, elementsPerBlock * 1);
 * assert.equal(fp16, 2048);
 * assert.equal(fp8, 2 * fp16);
 * ```
 *
 * @example A budget too small for one block names the size it needs
 * ```ts
 * import { blocksForBudget } from "./blocks_for_budget.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => blocksForBudget(1000, 4096), /one block needs 4096 bytes/);
 * ```
 */
export function blocksForBudget(
  budgetBytes: number,
  bytesPerBlock: number,
): number {
  if (!Number.isFinite(bytesPerBlock) || bytesPerBlock <= 0) {
    throw new RangeError(
      `Cannot size the KV cache: bytes per block must be a positive finite number, got ${bytesPerBlock}: check the backend's bytesPerBlock for this layout`,
    );
  }
  if (!Number.isFinite(budgetBytes) || budgetBytes <= 0) {
    throw new RangeError(
      `Cannot size the KV cache: the budget must be a positive finite number of bytes, got ${budgetBytes}: set --kv-cache-memory`,
    );
  }
  const blocks = Math.floor(budgetBytes / bytesPerBlock);
  if (blocks < 1) {
    throw new RangeError(
      `KV cache budget of ${budgetBytes} bytes is smaller than one block: one block needs ${bytesPerBlock} bytes: raise --kv-cache-memory to at least ${bytesPerBlock} bytes, or use a smaller block size or an 8-bit KV cache dtype`,
    );
  }
  return blocks;
}
