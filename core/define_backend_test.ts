import assert from "node:assert/strict";
import referenceBackend from "../backends/reference/mod.ts";
import type { CreateBackendOptions } from "./backend.ts";
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

Deno.test("backendDefinitionProblems() checks the settings schema: types, domains, defaults, targets, duplicates", () => {
  const setting = { description: "A setting" };
  const bad = {
    ...referenceBackend,
    settings: [
      { ...setting, name: "1st", type: "boolean", default: true },
      { ...setting, name: "a", type: "boolean", default: "yes" },
      { ...setting, name: "b", type: "integer", min: 4, max: 1, default: 2 },
      { ...setting, name: "c", type: "integer", min: 1, max: 4, default: 5 },
      {
        ...setting,
        name: "d",
        type: "integer",
        min: 1,
        max: 4,
        values: [8],
        default: 8,
      },
      { ...setting, name: "e", type: "enum", values: ["x"], default: "y" },
      { ...setting, name: "f", type: "float", default: 1 },
      {
        ...setting,
        name: "g",
        type: "boolean",
        default: true,
        targets: ["native"],
      },
      { name: "h", type: "boolean", default: true },
      { ...setting, name: "a", type: "boolean", default: false },
    ],
  };
  assert.deepEqual(backendDefinitionProblems(bad), [
    'settings[0].name must be an identifier such as "kernelPath", got "1st"',
    "settings[1].default must be a boolean",
    "settings[2] must have integers min <= max",
    "settings[3].default 5 is not an allowed value",
    "settings[4].values must list integers from 1 to 4",
    'settings[5].default "y" is not one of x',
    'settings[6].type must be one of boolean, integer, enum, got "float"',
    'settings[7].targets must list some of the targets the backend ships (reference), got ["native"]',
    "settings[8].description must be a one-line string",
    'settings declare "a" twice for target reference: give each declaration its own targets',
  ]);
});

Deno.test("defineBackend() gates create(): a target receives checked settings with defaults, and a bad one never reaches it", async () => {
  const seen: unknown[] = [];
  const [target] = referenceBackend.targets;
  const def = defineBackend({
    ...referenceBackend,
    name: "gated",
    targets: [{
      ...target,
      create: (o?: CreateBackendOptions) => {
        seen.push(o?.settings);
        return target.create(o);
      },
    }],
    settings: [{
      name: "fast",
      type: "boolean",
      default: true,
      description: "Go fast",
    }],
  });
  await (await def.targets[0].create()).dispose();
  await (await def.targets[0].create({ settings: { fast: false } })).dispose();
  assert.throws(
    () => def.targets[0].create({ settings: { fast: 1 } }),
    /Backend gated on reference: setting fast must be true or false, got 1/,
  );
  assert.deepEqual(seen, [{ fast: true }, { fast: false }]);
  assert.equal(defineBackend(def), def);
});
