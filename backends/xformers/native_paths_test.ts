// Every kernel path (scalar, avx2, avx512, avx512_vnni) on this machine:
// its SIMD loaders decode every code bit-exactly as core does, and its
// attention matches the fp64 oracle for every dtype. A path this CPU lacks
// is ignored with the reason.

import assert from "node:assert/strict";
import { type CodeArray, codecFor } from "../../core/codec.ts";
import type { Int8Scheme, KvCacheDtype } from "../../core/dtype.ts";
import { mulberry32 } from "../../core/prng.ts";
import {
  KERNEL_PATHS,
  type KernelPathName,
  loadNativeAddon,
  probeNativeAddon,
} from "../../native/mod.ts";
import { createXformersNativeBackend } from "./native_backend.ts";
import { layerFor, runScenario, SKIP_REASON } from "./native_test_util.ts";

const probe = probeNativeAddon();
const best = probe.available ? probe.addon.kernelSelection().best : "scalar";

// Paths are passed explicitly, never through KVPLUG_NATIVE_PATH: test
// files run in parallel in one process and share its environment.
function pathTest(
  path: KernelPathName,
  name: string,
  fn: () => void,
): void {
  const missing = KERNEL_PATHS.indexOf(path) > KERNEL_PATHS.indexOf(best)
    ? `this CPU's best path is ${best}`
    : undefined;
  const skip = SKIP_REASON ?? missing;
  Deno.test({
    name: skip ? `${name} (ignored: ${skip})` : name,
    ignore: skip !== undefined,
    fn,
  });
}

/** Every code of a dtype (fp32: specials and random bit patterns). */
function allCodes(dtype: KvCacheDtype): CodeArray {
  if (dtype === "fp32") {
    const rand = mulberry32(9);
    const bits = Uint32Array.from(
      { length: 4099 },
      () => Math.floor(rand() * 2 ** 32),
    );
    bits.set([
      0,
      0x80000000,
      0x7f800000,
      0xff800000,
      0x7fc00000,
      1,
      0x807fffff,
    ]);
    return new Float32Array(bits.buffer);
  }
  const n = codecFor(dtype).bytes === 2 ? 65536 : 256;
  const codes = codecFor(dtype).allocate(n);
  for (let c = 0; c < n; c++) codes[c] = dtype === "int8" ? (c << 24) >> 24 : c;
  return codes;
}

const DECODE_CASES: { dtype: KvCacheDtype; scale: number; zp: number }[] = [
  { dtype: "fp32", scale: 1, zp: 0 },
  { dtype: "fp16", scale: 1, zp: 0 },
  { dtype: "bf16", scale: 1, zp: 0 },
  { dtype: "fp8_e4m3", scale: 0.0123, zp: 0 },
  // Subnormal scales: products land in fp32's subnormal range.
  { dtype: "fp8_e4m3", scale: 1e-40, zp: 0 },
  { dtype: "fp8_e5m2", scale: 7.5, zp: 0 },
  { dtype: "fp8_e5m2", scale: 3e-38, zp: 0 },
  { dtype: "int8", scale: 0.037, zp: -5 },
  { dtype: "int8", scale: 1e-3, zp: 127 },
];

const ATTEND_CASES: { dtype: KvCacheDtype; scheme?: Int8Scheme }[] = [
  { dtype: "fp32" },
  { dtype: "fp16" },
  { dtype: "bf16" },
  { dtype: "fp8_e4m3" },
  { dtype: "fp8_e5m2" },
  { dtype: "int8", scheme: "per_tensor" },
  { dtype: "int8", scheme: "per_token_head" },
];

for (const path of KERNEL_PATHS) {
  for (const { dtype, scale, zp } of DECODE_CASES) {
    pathTest(
      path,
      `xformers native ${path}: the loaders decode every ${dtype} code (scale ${scale}, zero point ${zp}) bit-exactly as core`,
      () => {
        const codes = allCodes(dtype);
        // A length that is not a multiple of any vector width: tails too.
        const got = new Float32Array(codes.length);
        const ran = loadNativeAddon().dequantizeCodes(
          dtype,
          codes,
          scale,
          zp,
          got,
          path,
        );
        assert.equal(ran, path);
        const codec = codecFor(dtype);
        const want = new Float32Array(codes.length);
        codec.decodeArray(codes, want, scale, zp);
        for (let i = 0; i < codes.length; i++) {
          const same = Object.is(got[i], want[i]) ||
            (Number.isNaN(got[i]) && Number.isNaN(want[i]));
          if (!same) {
            assert.fail(
              `code ${codes[i]}: ${
                got[i]
              } from the ${path} loader, core decodes ${want[i]}`,
            );
          }
        }
      },
    );
  }
  for (const { dtype, scheme } of ATTEND_CASES) {
    const label = scheme === "per_token_head" ? "int8 per_token_head" : dtype;
    pathTest(
      path,
      `xformers native ${path}: mixed ${label} attention, head_dim 72 and 128, block sizes 8 and 16, matches the fp64 oracle`,
      () => {
        const seqs = [{ len: 1, queryLen: 1 }, { len: 17, queryLen: 1 }, {
          len: 30,
          queryLen: 11,
        }];
        for (const [headDim, blockSize] of [[72, 8], [128, 16]]) {
          const layer = layerFor({
            dtype,
            int8Scheme: scheme,
            numQHeads: 12,
            numKvHeads: 3,
            headDim,
            blockSize,
            window: blockSize === 8 ? 13 : undefined,
          });
          const { maxError } = runScenario({
            layer,
            seqs,
            seed: 900 + headDim,
            kernelPath: path,
          });
          // Tolerances as in native_attention_test.ts.
          const tolerance = dtype === "fp32" ? 1e-4 : 2e-3;
          assert.ok(
            maxError <= tolerance,
            `head_dim ${headDim}: max |out - oracle| = ${maxError} > ${tolerance}`,
          );
        }
      },
    );
  }
}

Deno.test({
  name:
    "xformers native: KVPLUG_NATIVE_THREADS sizes the persistent pool when it starts, and KVPLUG_NATIVE_PATH picks the kernels",
  ignore: SKIP_REASON !== undefined,
  fn: async () => {
    // A fresh process per setting: the pool starts once per process, and a
    // later change of the variable does not resize it.
    const mod = new URL("../../native/mod.ts", import.meta.url).href;
    const code = `import { loadNativeAddon } from "${mod}";
      const addon = loadNativeAddon();
      const first = addon.poolThreads();
      Deno.env.set("KVPLUG_NATIVE_THREADS", "7");
      const path = addon.dequantizeCodes("fp16", new Uint16Array(8), 1, 0,
        new Float32Array(8), null);
      console.log(first, addon.poolThreads(), path);`;
    const cpus = navigator.hardwareConcurrency;
    // An invalid setting falls back to the CPU's parallelism.
    for (
      const [setting, want] of [
        ["3", "3 3 scalar"],
        ["1", "1 1 scalar"],
        ["zero", `${cpus} ${cpus} scalar`],
      ]
    ) {
      const { stdout, stderr, success } = await new Deno.Command(
        Deno.execPath(),
        {
          args: ["eval", "-A", code],
          env: { KVPLUG_NATIVE_THREADS: setting, KVPLUG_NATIVE_PATH: "scalar" },
        },
      ).output();
      assert.ok(success, new TextDecoder().decode(stderr));
      const got = new TextDecoder().decode(stdout).trim();
      assert.equal(got, want, `KVPLUG_NATIVE_THREADS=${setting}`);
    }
  },
});

Deno.test({
  name:
    "xformers native: an explicit kernel path above the CPU's best falls back to the best, an unknown one is refused",
  ignore: SKIP_REASON !== undefined,
  fn: () => {
    const out = new Float32Array(8);
    const ran = loadNativeAddon().dequantizeCodes(
      "int8",
      new Int8Array(8),
      1,
      0,
      out,
      "avx512_vnni",
    );
    assert.equal(ran, best);
    assert.throws(
      () =>
        createXformersNativeBackend(loadNativeAddon(), {
          kernelPath: "sse9" as KernelPathName,
        }),
      /kernelPath "sse9" is not a kernel path: use one of scalar, avx2, avx512, avx512_vnni/,
    );
  },
});
