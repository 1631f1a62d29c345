import assert from "node:assert/strict";
import { loadSafetensors } from "./load_safetensors.ts";
import { parseSafetensors, SafetensorsError } from "./safetensors.ts";
import { encodeSafetensors } from "./safetensors_write.ts";

const VALUES = Float32Array.of(1, -2.5, 0.1, 65504, 1e-3, -0);

function header(bytes: Uint8Array): Record<string, unknown> {
  const len = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + len)));
}

function withHeader(h: Record<string, unknown>, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(h));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

Deno.test("parseSafetensors() round-trips F32 exactly and F16/BF16 to their rounding", () => {
  const bytes = encodeSafetensors({
    a: { dtype: "F32", shape: [2, 3], data: VALUES },
    b: { dtype: "F16", shape: [6], data: VALUES },
    c: { dtype: "BF16", shape: [3, 2], data: VALUES },
    scalar: { dtype: "F32", shape: [], data: Float32Array.of(7) },
  }, { metadata: { format: "pt" } });
  const t = parseSafetensors(bytes, { file: "x.safetensors" });
  assert.deepEqual([...t.keys()].sort(), ["a", "b", "c", "scalar"]);
  assert.deepEqual(t.get("a"), { dtype: "F32", shape: [2, 3], data: VALUES });
  assert.deepEqual(t.get("scalar")!.shape, []);
  assert.deepEqual([...t.get("b")!.data], [
    1,
    -2.5,
    0.0999755859375,
    65504,
    0.0010004043579101562,
    -0,
  ]);
  assert.deepEqual([...t.get("c")!.data], [
    1,
    -2.5,
    0.10009765625,
    65536,
    0.00099945068359375,
    -0,
  ]);
  assert.equal(t.get("c")!.dtype, "BF16");
});

Deno.test("parseSafetensors() reads tensors at offsets that are not multiples of 4", () => {
  const h = { x: { dtype: "F32", shape: [1], data_offsets: [2, 6] } };
  const bytes = withHeader(h, 6);
  const at = bytes.length - 4;
  new DataView(bytes.buffer).setFloat32(at, 3.5, true);
  assert.deepEqual([...parseSafetensors(bytes).get("x")!.data], [3.5]);
});

Deno.test("parseSafetensors() converts only the tensors `only` selects", () => {
  const bytes = encodeSafetensors({
    keep: { dtype: "F32", shape: [1], data: Float32Array.of(1) },
    skip: { dtype: "F32", shape: [1], data: Float32Array.of(2) },
  });
  const h = header(bytes);
  (h.skip as Record<string, unknown>).dtype = "I64"; // unsupported, but skipped
  const json = JSON.stringify(h);
  const patched = withHeader(h, bytes.length - 8 - json.length);
  patched.set(bytes.subarray(bytes.length - 8), patched.length - 8);
  const t = parseSafetensors(patched, { only: (n) => n === "keep" });
  assert.deepEqual([...t.keys()], ["keep"]);
});

Deno.test("parseSafetensors() names the file and tensor of a truncated file", () => {
  const bytes = encodeSafetensors({
    w: { dtype: "F32", shape: [4], data: new Float32Array(4) },
  });
  assert.throws(
    () =>
      parseSafetensors(bytes.subarray(0, bytes.length - 1), {
        file: "m.safetensors",
      }),
    (e: Error) =>
      e instanceof SafetensorsError &&
      /^m\.safetensors: File is truncated: tensor "w" ends at byte \d+ but the file has \d+$/
        .test(e.message),
  );
  assert.throws(
    () => parseSafetensors(bytes.subarray(0, 20)),
    /header says \d+ header bytes/,
  );
  assert.throws(
    () => parseSafetensors(new Uint8Array(3)),
    /less than the 8-byte header length/,
  );
});

Deno.test("parseSafetensors() refuses an unsupported dtype naming the tensor", () => {
  const bytes = withHeader({
    ids: { dtype: "I64", shape: [1], data_offsets: [0, 8] },
  }, 8);
  assert.throws(
    () => parseSafetensors(bytes, { file: "f.safetensors" }),
    {
      name: "SafetensorsError",
      message:
        'f.safetensors: Tensor "ids" has dtype "I64": supported dtypes are F32, F16, BF16',
    },
  );
});

Deno.test("parseSafetensors() refuses offsets that disagree with the shape", () => {
  const bytes = withHeader({
    w: { dtype: "F16", shape: [3], data_offsets: [0, 4] },
  }, 6);
  assert.throws(
    () => parseSafetensors(bytes),
    /Tensor "w" has data_offsets \[0,4\]: shape \[3\] in F16 needs 6 bytes/,
  );
  const bad = withHeader({
    w: { dtype: "F16", shape: [-1], data_offsets: [0, 0] },
  }, 0);
  assert.throws(() => parseSafetensors(bad), /Tensor "w" has shape \[-1\]/);
});

Deno.test("parseSafetensors() reports a header that is not JSON", () => {
  const bytes = new Uint8Array(12);
  new DataView(bytes.buffer).setBigUint64(0, 4n, true);
  bytes.set(new TextEncoder().encode("{no}"), 8);
  assert.throws(
    () => parseSafetensors(bytes, { file: "z" }),
    /^SafetensorsError: z: Header is not valid JSON/,
  );
});

Deno.test("loadSafetensors() follows model.safetensors.index.json across shards", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const one = Float32Array.of(1, 2), two = Float32Array.of(3);
    await Deno.writeFile(
      `${dir}/s1.safetensors`,
      encodeSafetensors({ a: { dtype: "F32", shape: [2], data: one } }),
    );
    await Deno.writeFile(
      `${dir}/s2.safetensors`,
      encodeSafetensors({ b: { dtype: "BF16", shape: [1], data: two } }),
    );
    const index = {
      metadata: {},
      weight_map: { a: "s1.safetensors", b: "s2.safetensors" },
    };
    await Deno.writeTextFile(
      `${dir}/model.safetensors.index.json`,
      JSON.stringify(index),
    );
    const t = await loadSafetensors(dir);
    assert.deepEqual([...t.get("a")!.data], [1, 2]);
    assert.deepEqual([...t.get("b")!.data], [3]);
    assert.deepEqual([
      ...(await loadSafetensors(dir, { only: (n) => n === "b" })).keys(),
    ], ["b"]);

    index.weight_map.b = "s1.safetensors"; // b is not in s1
    await Deno.writeTextFile(
      `${dir}/model.safetensors.index.json`,
      JSON.stringify(index),
    );
    await assert.rejects(loadSafetensors(dir), {
      name: "SafetensorsError",
      message:
        `${dir}/s1.safetensors: Tensor "b" is missing, though ${dir}/model.safetensors.index.json maps it to this shard`,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadSafetensors() names a checkpoint that is not there", async () => {
  await assert.rejects(
    loadSafetensors("/nonexistent/dir"),
    /^SafetensorsError: \/nonexistent\/dir: Cannot read the checkpoint/,
  );
});
