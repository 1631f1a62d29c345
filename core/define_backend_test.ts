import assert from "node:assert/strict";
import referenceBackend from "../backends/reference/mod.ts";
import {
  BackendDefinitionError,
  backendDefinitionProblems,
  defineBackend,
} from "./define_backend.ts";

Deno.test("defineBackend() accepts the reference backend unchanged", () => {
  assert.equal(defineBackend(referenceBackend), referenceBackend);
});

Deno.test("defineBackend() refuses another API version with both numbers in the message", () => {
  assert.throws(
    () => defineBackend({ ...referenceBackend, apiVersion: 2 }),
    (e: Error) => {
      assert.ok(e instanceof BackendDefinitionError);
      assert.match(
        e.message,
        /apiVersion is 2 but this framework implements backend API version 1/,
      );
      return true;
    },
  );
});

Deno.test("backendDefinitionProblems() finds every bad capability field, not just the first", () => {
  const [target] = referenceBackend.targets;
  const bad = {
    ...referenceBackend,
    name: "Bad Name",
    targets: [{
      ...target,
      target: "tpu",
      capabilities: {
        ...target.capabilities,
        headDims: [0],
        blockSizes: undefined,
        softCap: "yes",
      },
    }],
  };
  assert.deepEqual(backendDefinitionProblems(bad), [
    'name must be a lower-case identifier such as "my_backend", got "Bad Name"',
    "targets[0].target must be one of native, webgpu, reference",
    "targets[0].capabilities.headDims must list positive integers",
    "targets[0].capabilities.blockSizes is missing (a list of sizes or { multipleOf, min, max })",
    "targets[0].capabilities.softCap must be a boolean",
  ]);
});
