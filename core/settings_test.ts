import assert from "node:assert/strict";
import type { BackendDefinition } from "./backend.ts";
import { BackendSettingError, resolveSettings } from "./settings.ts";
import { settingsForUses } from "./settings_plan.ts";

const demo = {
  name: "demo",
  targets: [{ target: "native" }, { target: "webgpu" }],
  settings: [
    { name: "fast", type: "boolean", default: true, description: "Go fast" },
    {
      name: "every",
      type: "integer",
      min: 1,
      max: 4,
      default: 2,
      targets: ["native"],
      description: "Blocks per promotion",
    },
    {
      name: "every",
      type: "integer",
      min: 1,
      max: 32,
      values: [1, 2, 4, 8, 16, 32],
      default: 2,
      targets: ["webgpu"],
      description: "Blocks per promotion",
    },
    {
      name: "dot",
      type: "enum",
      values: ["auto", "shift"],
      default: "auto",
      targets: ["webgpu"],
      description: "Dot product",
    },
  ],
} as unknown as BackendDefinition;

const refuses = (fn: () => unknown, message: RegExp) =>
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof BackendSettingError, e.name);
    assert.match(e.message, message);
    return true;
  });

Deno.test("resolveSettings() fills in the defaults of the target's own settings", () => {
  assert.deepEqual(resolveSettings(demo, "native"), { fast: true, every: 2 });
  assert.deepEqual(resolveSettings(demo, "webgpu", { dot: "shift" }), {
    fast: true,
    every: 2,
    dot: "shift",
  });
});

Deno.test("resolveSettings() checks booleans, integer ranges, value lists and enums", () => {
  refuses(
    () => resolveSettings(demo, "native", { fast: "yes" }),
    /^Backend demo on native: setting fast must be true or false, got "yes"$/,
  );
  refuses(
    () => resolveSettings(demo, "native", { every: 1.5 }),
    /setting every must be an integer from 1 to 4, got 1.5$/,
  );
  refuses(
    () => resolveSettings(demo, "native", { every: 0 }),
    /setting every must be an integer from 1 to 4, got 0$/,
  );
  refuses(
    () => resolveSettings(demo, "webgpu", { every: 3 }),
    /on webgpu: setting every must be one of 1, 2, 4, 8, 16, 32, got 3$/,
  );
  refuses(
    () => resolveSettings(demo, "webgpu", { dot: "fast" }),
    /setting dot must be one of auto, shift, got "fast"$/,
  );
});

Deno.test("resolveSettings() reads command-line text by the setting's type", () => {
  assert.deepEqual(
    resolveSettings(demo, "native", { fast: "false", every: "4" }),
    {
      fast: false,
      every: 4,
    },
  );
  refuses(
    () => resolveSettings(demo, "native", { every: "four" }),
    /setting every must be an integer from 1 to 4, got "four"/,
  );
});

Deno.test("resolveSettings() applies a per-target domain: the same value passes on one target and not the other", () => {
  assert.equal(resolveSettings(demo, "webgpu", { every: 8 }).every, 8);
  refuses(
    () => resolveSettings(demo, "native", { every: 8 }),
    /on native: setting every must be an integer from 1 to 4, got 8/,
  );
});

Deno.test("resolveSettings() refuses an unknown name, listing the known ones and the target that takes it", () => {
  refuses(
    () => resolveSettings(demo, "native", { promote: true }),
    /^Backend demo on native has no setting "promote": use one of fast, every$/,
  );
  refuses(
    () => resolveSettings(demo, "native", { dot: "shift" }),
    /has no setting "dot" \(it applies on webgpu only\): use one of fast, every/,
  );
  refuses(
    () => resolveSettings({ name: "bare" }, "native", { fast: true }),
    /use one of none \(it takes no settings\)/,
  );
});

Deno.test("settingsForUses() gives each instance the settings it declares, and names who declares one nobody in use takes", () => {
  const other = { name: "other", targets: [] } as unknown as BackendDefinition;
  const uses = [
    { definition: demo, target: "native" as const },
    { definition: other, target: "native" as const },
  ];
  assert.deepEqual(settingsForUses(uses, { fast: "false" }), {
    "demo/native": { fast: false, every: 2 },
    "other/native": {},
  });
  refuses(
    () => settingsForUses(uses, { dot: "shift" }),
    /No backend in use takes the setting "dot": demo declares it on webgpu; in use: demo\/native, other\/native\. Drop --backend-setting dot/,
  );
  refuses(
    () => settingsForUses(uses, { nope: "1" }, [demo, other]),
    /"nope": no loaded backend declares it/,
  );
});
