import assert from "node:assert/strict";
import { KvCacheExhaustedError } from "./kv_cache_errors.ts";

Deno.test("KvCacheExhaustedError names the counts and the fix", () => {
  const error = new KvCacheExhaustedError({
    needed: 3,
    free: 1,
    numBlocks: 512,
  });
  assert.equal(error.name, "KvCacheExhaustedError");
  assert.equal(error.needed, 3);
  assert.equal(error.free, 1);
  assert.equal(error.numBlocks, 512);
  assert.match(
    error.message,
    /^KV cache is out of blocks: need 3, 1 free of 512/,
  );
  assert.match(error.message, /preempt or finish a sequence/);
  assert.match(error.message, /--kv-cache-memory/);
  assert.doesNotMatch(error.message, /\.$/);
});

Deno.test("KvCacheExhaustedError keeps its cause", () => {
  const cause = new Error("inner");
  const error = new KvCacheExhaustedError(
    { needed: 1, free: 0, numBlocks: 4 },
    {
      cause,
    },
  );
  assert.equal(error.cause, cause);
  assert.ok(error instanceof Error);
});
