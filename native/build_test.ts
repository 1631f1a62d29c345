import assert from "node:assert/strict";
import { checkAddonFreshness, hasCommand } from "./build.ts";

async function fakeCrate(): Promise<{ crateDir: string; addonPath: string }> {
  const crateDir = await Deno.makeTempDir();
  await Deno.mkdir(`${crateDir}/src/kernels`, { recursive: true });
  await Deno.writeTextFile(`${crateDir}/Cargo.toml`, "[package]\n");
  await Deno.writeTextFile(`${crateDir}/src/lib.rs`, "");
  await Deno.writeTextFile(`${crateDir}/src/kernels/decode.rs`, "");
  const addonPath = `${crateDir}/kvplug_native.node`;
  await Deno.writeTextFile(addonPath, "");
  // Sources an hour old, addon now.
  const old = new Date(Date.now() - 3_600_000);
  for (const source of ["Cargo.toml", "src/lib.rs", "src/kernels/decode.rs"]) {
    await Deno.utime(`${crateDir}/${source}`, old, old);
  }
  return { crateDir, addonPath };
}

Deno.test("checkAddonFreshness() calls an addon newer than every source fresh", async () => {
  const { crateDir, addonPath } = await fakeCrate();
  assert.deepEqual(await checkAddonFreshness({ crateDir, addonPath }), {
    fresh: true,
    reason: `native addon is up to date: ${addonPath}`,
  });
  await Deno.remove(crateDir, { recursive: true });
});

Deno.test("checkAddonFreshness() calls a missing addon stale and names its path", async () => {
  const { crateDir, addonPath } = await fakeCrate();
  await Deno.remove(addonPath);
  assert.deepEqual(await checkAddonFreshness({ crateDir, addonPath }), {
    fresh: false,
    reason: `native addon is missing: ${addonPath}`,
  });
  await Deno.remove(crateDir, { recursive: true });
});

Deno.test("checkAddonFreshness() names a nested source file that is newer than the addon", async () => {
  const { crateDir, addonPath } = await fakeCrate();
  const future = new Date(Date.now() + 60_000);
  await Deno.utime(`${crateDir}/src/kernels/decode.rs`, future, future);
  assert.deepEqual(await checkAddonFreshness({ crateDir, addonPath }), {
    fresh: false,
    reason: "src/kernels/decode.rs is newer than the native addon",
  });
  await Deno.remove(crateDir, { recursive: true });
});

Deno.test("checkAddonFreshness() calls the addon stale when Cargo.toml changed", async () => {
  const { crateDir, addonPath } = await fakeCrate();
  const future = new Date(Date.now() + 60_000);
  await Deno.utime(`${crateDir}/Cargo.toml`, future, future);
  assert.equal(
    (await checkAddonFreshness({ crateDir, addonPath })).reason,
    "Cargo.toml is newer than the native addon",
  );
  await Deno.remove(crateDir, { recursive: true });
});

Deno.test("hasCommand() is false for a program that is not on PATH", async () => {
  assert.equal(await hasCommand("kvplug-no-such-program"), false);
});
