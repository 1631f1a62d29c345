import assert from "node:assert/strict";
import { CARGO_MISSING, ensureNativeBuilt, hasCommand } from "./build.ts";
import {
  ADDON_ABI_VERSION,
  assertAbiVersion,
  CPU_FEATURES,
  type CpuFeature,
  KERNEL_PATHS,
  type KernelPathName,
  loadNativeAddon,
  NativeAbiError,
  NOT_BUILT_REASON,
  probeNativeAddon,
} from "./mod.ts";

// Build once before any test. Skip (visibly) only when cargo is absent and
// no addon was built earlier.
const hasCargo = await hasCommand("cargo");
if (hasCargo) {
  const { built, reason } = await ensureNativeBuilt({ quiet: true });
  if (built) console.log(`native/mod_test.ts rebuilt the addon: ${reason}`);
}
const skip = !hasCargo && !probeNativeAddon().available;
if (skip) {
  console.warn(`native/mod_test.ts: native tests ignored: ${CARGO_MISSING}`);
}

function nativeTest(name: string, fn: () => void | Promise<void>): void {
  Deno.test({
    name: skip ? `${name} (ignored: cargo was not found)` : name,
    ignore: skip,
    fn,
  });
}

const ENV_VAR = "KVPLUG_NATIVE_PATH";

function withKernelPathEnv<T>(value: string | undefined, fn: () => T): T {
  const previous = Deno.env.get(ENV_VAR);
  try {
    if (value === undefined) Deno.env.delete(ENV_VAR);
    else Deno.env.set(ENV_VAR, value);
    return fn();
  } finally {
    if (previous === undefined) Deno.env.delete(ENV_VAR);
    else Deno.env.set(ENV_VAR, previous);
  }
}

// The features each path needs, mirroring native/src/kernel_path.rs.
const NEEDS: Record<KernelPathName, CpuFeature[]> = {
  scalar: [],
  avx2: ["avx2", "fma", "f16c"],
  avx512: ["avx2", "fma", "f16c", "avx512f", "avx512bw"],
  avx512_vnni: ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vnni"],
};

function bestPath(features: readonly CpuFeature[]): KernelPathName {
  return KERNEL_PATHS.findLast((path) =>
    NEEDS[path].every((need) => features.includes(need))
  )!;
}

nativeTest("abiVersion() returns the ABI native/mod.ts expects", () => {
  assert.equal(loadNativeAddon().abiVersion(), ADDON_ABI_VERSION);
});

nativeTest(
  "loadNativeAddon() returns the same cached addon on a second call",
  () => {
    assert.equal(loadNativeAddon(), loadNativeAddon());
  },
);

nativeTest(
  "cpuFeatures() lists only known feature names, once each, in order",
  () => {
    const features = loadNativeAddon().cpuFeatures();
    assert.ok(Array.isArray(features));
    for (const feature of features) {
      assert.ok(CPU_FEATURES.includes(feature), `unknown feature ${feature}`);
    }
    const order = features.map((feature) => CPU_FEATURES.indexOf(feature));
    assert.deepEqual(order, [...new Set(order)].sort((a, b) => a - b));
  },
);

nativeTest(
  "kernelPath() without an override is the best path the features allow",
  () => {
    const addon = loadNativeAddon();
    withKernelPathEnv(undefined, () => {
      const selection = addon.kernelSelection();
      assert.equal(addon.kernelPath(), bestPath(addon.cpuFeatures()));
      assert.equal(selection.status, "auto");
      assert.equal(selection.requested, null);
      assert.equal(selection.path, selection.best);
    });
  },
);

nativeTest(
  "kernelPath() follows KVPLUG_NATIVE_PATH=scalar on the next call",
  () => {
    const addon = loadNativeAddon();
    withKernelPathEnv(
      "scalar",
      () => assert.equal(addon.kernelPath(), "scalar"),
    );
    withKernelPathEnv(
      undefined,
      () => assert.equal(addon.kernelPath(), bestPath(addon.cpuFeatures())),
    );
  },
);

nativeTest(
  "kernelSelection() honours every available downgrade and falls back from the rest with a reason",
  () => {
    const addon = loadNativeAddon();
    const best = bestPath(addon.cpuFeatures());
    for (const path of KERNEL_PATHS) {
      const selection = withKernelPathEnv(path, () => addon.kernelSelection());
      assert.equal(selection.requested, path);
      assert.equal(selection.best, best);
      if (KERNEL_PATHS.indexOf(path) <= KERNEL_PATHS.indexOf(best)) {
        assert.equal(selection.path, path, `request ${path}`);
        assert.equal(selection.status, "override");
      } else {
        assert.equal(selection.path, best, `request ${path}`);
        assert.equal(selection.status, "fallback");
        assert.match(
          selection.reason,
          new RegExp(
            `${path} is not available on this CPU \\(missing .+\\): using ${best}`,
          ),
        );
      }
    }
  },
);

nativeTest(
  "kernelSelection() falls back to the best path and names the valid ones for an unknown request",
  () => {
    const addon = loadNativeAddon();
    const selection = withKernelPathEnv("sse9", () => addon.kernelSelection());
    assert.equal(selection.path, selection.best);
    assert.equal(selection.status, "fallback");
    assert.equal(
      selection.reason,
      `KVPLUG_NATIVE_PATH="sse9" is not a kernel path (expected one of scalar, avx2, avx512, avx512_vnni): using ${selection.best}`,
    );
  },
);

nativeTest("threads() is a positive integer", () => {
  const threads = loadNativeAddon().threads();
  assert.ok(
    Number.isInteger(threads) && threads >= 1,
    `threads() = ${threads}`,
  );
});

nativeTest(
  "sumF32() reads a subarray in place, honouring its byteOffset",
  () => {
    // Halves and small integers: every partial sum is exact in f32 and f64.
    const values = new Float32Array([1000, 1.5, 2.25, -3.5, 4, 0.125, 2000]);
    const middle = values.subarray(1, 6);
    assert.equal(middle.byteOffset, 4);
    assert.equal(
      loadNativeAddon().sumF32(middle),
      1.5 + 2.25 - 3.5 + 4 + 0.125,
    );
    assert.equal(loadNativeAddon().sumF32(values), 3004.375);
  },
);

nativeTest(
  "sumF32() sees writes made after the array was created (no copy is cached)",
  () => {
    const addon = loadNativeAddon();
    const values = new Float32Array(4);
    assert.equal(addon.sumF32(values), 0);
    values[2] = 8.5;
    assert.equal(addon.sumF32(values.subarray(2)), 8.5);
  },
);

nativeTest(
  "sumF32() returns +0 for an empty array and throws a TypeError for anything but a Float32Array",
  () => {
    const addon = loadNativeAddon();
    assert.ok(Object.is(addon.sumF32(new Float32Array(0)), 0));
    assert.throws(
      () => addon.sumF32(new Float64Array(2) as unknown as Float32Array),
      {
        name: "TypeError",
        message: "sumF32() argument a must be a Float32Array",
      },
    );
    assert.throws(() => (addon.sumF32 as () => number)(), {
      name: "TypeError",
      message: "sumF32() expects 1 argument(s), got 0",
    });
  },
);

nativeTest(
  "probeNativeAddon() reports the kernel path and features of the built addon",
  () => {
    const probe = probeNativeAddon();
    assert.ok(probe.available, probe.available ? "" : probe.reason);
    assert.equal(probe.features.length, probe.addon.cpuFeatures().length);
    assert.ok(KERNEL_PATHS.includes(probe.kernelPath));
    assert.match(probe.kernelReason, /\S/);
  },
);

Deno.test("probeNativeAddon() says the addon is not built when the file is missing", () => {
  const probe = probeNativeAddon({
    addonPath: `${Deno.makeTempDirSync()}/kvplug_native.node`,
  });
  assert.deepEqual(probe, { available: false, reason: NOT_BUILT_REASON });
  assert.equal(
    NOT_BUILT_REASON,
    "native addon not built: run deno task build:native (needs cargo)",
  );
});

Deno.test("probeNativeAddon() says a file that is not an addon failed to load", () => {
  const addonPath = `${Deno.makeTempDirSync()}/kvplug_native.node`;
  Deno.writeTextFileSync(addonPath, "not a shared library");
  const probe = probeNativeAddon({ addonPath });
  assert.equal(probe.available, false);
  if (!probe.available) {
    assert.match(probe.reason, /^native addon failed to load: /);
  }
});

Deno.test("assertAbiVersion() names both numbers and the fix on a mismatch", () => {
  assertAbiVersion(ADDON_ABI_VERSION);
  assert.throws(() => assertAbiVersion(2, 1), (error) => {
    assert.ok(error instanceof NativeAbiError);
    assert.equal(
      error.message,
      "Native addon ABI 2 does not match expected 1: rebuild with deno task build:native",
    );
    assert.equal(error.actual, 2);
    assert.equal(error.expected, 1);
    return true;
  });
});

Deno.test({
  name:
    "probeNativeAddon() refuses an addon built with another ABI, naming both numbers" +
    (hasCargo ? "" : " (ignored: cargo was not found)"),
  ignore: !hasCargo,
  fn: async () => {
    // Build a copy of the crate whose only change is ADDON_ABI_VERSION = 2.
    const dir = await Deno.makeTempDir();
    try {
      for (const name of ["Cargo.toml", "Cargo.lock", "build.rs"]) {
        await Deno.copyFile(new URL(name, import.meta.url), `${dir}/${name}`);
      }
      // src/ has subfolders (formats/, simd/, xformers/): copy the tree.
      const copyTree = async (from: URL, to: string) => {
        await Deno.mkdir(to);
        for await (const entry of Deno.readDir(from)) {
          const source = new URL(
            entry.name + (entry.isDirectory ? "/" : ""),
            from,
          );
          if (entry.isDirectory) await copyTree(source, `${to}/${entry.name}`);
          else await Deno.copyFile(source, `${to}/${entry.name}`);
        }
      };
      await copyTree(new URL("src/", import.meta.url), `${dir}/src`);
      const lib = await Deno.readTextFile(`${dir}/src/lib.rs`);
      const patched = lib.replace(
        "ADDON_ABI_VERSION: u32 = 1;",
        "ADDON_ABI_VERSION: u32 = 2;",
      );
      assert.notEqual(
        patched,
        lib,
        "src/lib.rs no longer defines ADDON_ABI_VERSION: u32 = 1",
      );
      await Deno.writeTextFile(`${dir}/src/lib.rs`, patched);
      const cargo = await new Deno.Command("cargo", {
        args: ["build", "--quiet", "--offline"],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(cargo.success, new TextDecoder().decode(cargo.stderr));
      const library = {
        darwin: "libkvplug_native.dylib",
        windows: "kvplug_native.dll",
      }[Deno.build.os as string] ??
        "libkvplug_native.so";
      const addonPath = `${dir}/kvplug_native.node`;
      await Deno.copyFile(`${dir}/target/debug/${library}`, addonPath);
      assert.deepEqual(probeNativeAddon({ addonPath }), {
        available: false,
        reason:
          "native addon ABI 2 does not match expected 1: rebuild with deno task build:native",
      });
      assert.throws(() => loadNativeAddon({ addonPath }), NativeAbiError);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
