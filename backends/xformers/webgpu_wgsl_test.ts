// The WGSL quantization helpers against exact host arithmetic. div_rn() is
// what makes cache writes bit-exact on adapters whose f32 `/` is not
// correctly rounded (WGSL allows 2.5 ULP; llvmpipe's happens to be exact,
// so the cache-write tests alone would not notice an approximate one).
import assert from "node:assert/strict";
import { mulberry32 } from "../../core/prng.ts";
import {
  createBufferFrom,
  KV_DTYPE_WGSL as kvDtype,
  KV_ENCODE_WGSL as kvEncode,
  pipelineCacheFor,
  readBuffer,
} from "../../webgpu/mod.ts";
import { named, sharedBackend, SKIP_REASON } from "./webgpu_test_support.ts";

const KERNEL = `
@group(0) @binding(0) var<storage, read> xs: array<u32>;
@group(0) @binding(1) var<storage, read> ss: array<u32>;
@group(0) @binding(2) var<storage, read_write> qs: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x >= arrayLength(&qs)) { return; }
  qs[id.x] = div_rn(xs[id.x], ss[id.x]);
}`;

/** Runs div_rn over pairs of fp32 bit patterns on the GPU. */
async function gpuDivide(x: Uint32Array, s: Uint32Array): Promise<Uint32Array> {
  const { device } = await sharedBackend();
  const pipeline = await pipelineCacheFor(device).compute(
    [kvDtype, kvEncode, KERNEL].join("\n"),
    { label: "div_rn test" },
  );
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
  const make = (data: Uint32Array) => createBufferFrom(device, data, usage);
  const buffers = [make(x), make(s), make(new Uint32Array(x.length))];
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(
    0,
    device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({
        binding,
        resource: { buffer },
      })),
    }),
  );
  pass.dispatchWorkgroups(Math.ceil(x.length / 64));
  pass.end();
  const out = await readBuffer(device, buffers[2], 0, x.byteLength, encoder);
  buffers.forEach((b) => b.destroy());
  return new Uint32Array(out);
}

Deno.test({
  name: named(
    "div_rn() equals the correctly rounded fp32 quotient, subnormals and overflow included",
  ),
  ignore: SKIP_REASON !== undefined,
  fn: async () => {
    const rand = mulberry32(99);
    const n = 1 << 14;
    const u32 = () => Math.floor(rand() * 2 ** 32) >>> 0;
    const x = new Uint32Array(n), s = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      // Exponents spread over the whole range, subnormals included, so
      // quotients overflow, underflow and land on subnormal ties.
      x[i] = i % 5 === 0 ? u32() & 0x807fffff : u32();
      const e = i % 7 === 0 ? 0 : 1 + Math.floor(rand() * 254);
      s[i] = (e << 23) | (u32() & 0x7fffff) || 1;
    }
    const got = await gpuDivide(x, s);
    const f = new Float32Array(3), b = new Uint32Array(f.buffer);
    for (let i = 0; i < n; i++) {
      b[0] = x[i];
      b[1] = s[i];
      f[2] = f[0] / f[1]; // f64 division rounded to fp32: exact (53 >= 2*24+2)
      if (Number.isNaN(f[2])) {
        assert.equal(got[i], 0x7fc00000, `x=${x[i]} s=${s[i]}`);
        continue;
      }
      assert.equal(
        got[i],
        b[2],
        `div_rn(0x${x[i].toString(16)}, 0x${s[i].toString(16)}) = 0x${
          got[i].toString(16)
        }, expected 0x${b[2].toString(16)} (${f[0]} / ${f[1]})`,
      );
    }
  },
});
