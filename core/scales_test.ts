import assert from "node:assert/strict";
import {
  CalibrationError,
  DEFAULT_SCALES,
  defaultScales,
  estimateScales,
  type LayerKvScales,
  loadCalibrationFile,
  parseCalibrationFile,
  resolveLayerScales,
} from "./scales.ts";
import { encodeInt8 } from "./int8.ts";

function file(
  numLayers: number,
  patch: (f: Record<string, unknown>) => void = () => {},
) {
  const f: Record<string, unknown> = {
    version: 1,
    kv_cache_dtype: "fp8_e4m3",
    num_layers: numLayers,
    layers: Array.from({ length: numLayers }, (_, l) => ({
      layer: l,
      k_scale: 0.01 * (l + 1),
      v_scale: 0.02 * (l + 1),
    })),
  };
  patch(f);
  return f;
}

// deno-lint-ignore no-explicit-any
const layer = (f: Record<string, unknown>, i: number): any =>
  (f.layers as unknown[])[i];

/** Asserts a CalibrationError whose message contains every fragment. */
function rejects(
  json: unknown,
  fragments: string[],
  numLayers = 4,
  dtype?: "int8" | "fp8_e4m3",
) {
  assert.throws(
    () => parseCalibrationFile(json, { numLayers, source: "cal.json", dtype }),
    (e: unknown) => {
      assert.ok(e instanceof CalibrationError, `not a CalibrationError: ${e}`);
      assert.equal(e.name, "CalibrationError");
      assert.match(e.message, /^Invalid calibration file "cal\.json": /);
      assert.doesNotMatch(e.message, /\.$/);
      for (const f of fragments) {
        assert.ok(e.message.includes(f), `"${f}" not in: ${e.message}`);
      }
      return true;
    },
  );
}

Deno.test("parseCalibrationFile() returns the scales indexed by layer, in any order", () => {
  const f = file(3);
  (f.layers as unknown[]).reverse();
  layer(f, 0).k_zero_point = 0;
  const scales = parseCalibrationFile(f, { numLayers: 3 });
  assert.deepEqual(scales.map((s) => s.kScale), [0.01, 0.02, 0.03]);
  assert.deepEqual(scales[1], {
    kScale: 0.02,
    vScale: 0.04,
    kZeroPoint: 0,
    vZeroPoint: 0,
  });
  const int8 = file(1, (f) => {
    f.kv_cache_dtype = "int8";
    Object.assign(layer(f, 0), { k_zero_point: -3, v_zero_point: 12 });
  });
  assert.deepEqual(
    parseCalibrationFile(int8, { numLayers: 1, dtype: "int8" })[0],
    {
      kScale: 0.01,
      vScale: 0.02,
      kZeroPoint: -3,
      vZeroPoint: 12,
    },
  );
});

Deno.test("parseCalibrationFile() names the field path and value of a bad scale", () => {
  for (const bad of [0, -1, "0.5", null, 1e-50, 1e39]) {
    rejects(file(4, (f) => (layer(f, 3).k_scale = bad)), [
      `layers[3].k_scale`,
      `got ${bad === "0.5" ? '"0.5"' : bad}`,
    ]);
  }
  rejects(file(4, (f) => delete layer(f, 2).v_scale), [
    "layers[2].v_scale",
    "got undefined",
  ]);
});

Deno.test("parseCalibrationFile() rejects zero points that are not int8 integers", () => {
  rejects(file(4, (f) => (layer(f, 1).k_zero_point = 1.5)), [
    "layers[1].k_zero_point",
    "got 1.5",
    "-128 to 127",
  ]);
  rejects(file(4, (f) => (layer(f, 0).v_zero_point = 128)), [
    "layers[0].v_zero_point",
    "got 128",
  ]);
  rejects(
    file(4, (f) => (layer(f, 0).v_zero_point = 3)),
    ["layers[0].v_zero_point", "only int8"],
    4,
    "fp8_e4m3",
  );
});

Deno.test("parseCalibrationFile() names a missing layer and both layer counts", () => {
  rejects(
    file(4, (f) => {
      delete f.num_layers;
      (f.layers as unknown[]).splice(2, 1);
    }),
    [
      "layers has no entry for layer 2",
      "3 entries given",
      "the model has 4 layers",
    ],
  );
});

Deno.test("parseCalibrationFile() names a duplicate layer and where it was first given", () => {
  rejects(file(4, (f) => (layer(f, 3).layer = 1)), [
    "layers[3].layer repeats layer 1",
    "layers[1]",
  ]);
});

Deno.test("parseCalibrationFile() rejects a layer count that does not match the model", () => {
  rejects(file(3), ["num_layers is 3 but the model has 4 layers"]);
  rejects(file(5, (f) => delete f.num_layers), [
    "layers[4].layer is 4",
    "layers 0 to 3",
  ]);
});

Deno.test("parseCalibrationFile() rejects wrong types with the path and what it got", () => {
  rejects([], ["the top level must be an object, got an array"]);
  rejects(null, ["got null"]);
  rejects(file(4, (f) => (f.version = 2)), ["version must be 1, got 2"]);
  rejects(file(4, (f) => delete f.version), [
    "version must be 1, got undefined",
  ]);
  rejects(file(4, (f) => (f.layers = {})), [
    "layers must be an array, got an object",
  ]);
  rejects(file(4, (f) => ((f.layers as unknown[])[1] = 7)), [
    "layers[1] must be an object, got 7",
  ]);
  rejects(file(4, (f) => (layer(f, 2).layer = "2")), [
    'layers[2].layer must be an integer, got "2"',
  ]);
  rejects(file(4, (f) => (f.kv_cache_dtype = "fp4")), [
    'kv_cache_dtype is "fp4"',
    "use one of fp32, fp16, bf16, fp8_e4m3, fp8_e5m2, int8",
  ]);
  rejects(
    file(4),
    ['kv_cache_dtype is "fp8_e4m3" but the cache uses int8'],
    4,
    "int8",
  );
});

Deno.test("loadCalibrationFile() reads a file and names the path in errors", {
  ignore: Deno.permissions.querySync({ name: "write" }).state !== "granted" ||
    Deno.permissions.querySync({ name: "read" }).state !== "granted",
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = `${dir}/good.json`;
    await Deno.writeTextFile(good, JSON.stringify(file(2)));
    const scales = await loadCalibrationFile(good, { numLayers: 2 });
    assert.equal(scales[1].vScale, 0.04);
    const bad = `${dir}/bad.json`;
    await Deno.writeTextFile(bad, '{ "version": 1, ');
    await assert.rejects(
      loadCalibrationFile(bad, { numLayers: 2 }),
      (e: unknown) => {
        assert.ok(e instanceof CalibrationError);
        assert.match(
          e.message,
          /^Calibration file ".*bad\.json" is not valid JSON: /,
        );
        assert.ok(e.cause instanceof SyntaxError);
        return true;
      },
    );
    await assert.rejects(
      loadCalibrationFile(good, { numLayers: 3 }),
      /good\.json.*num_layers is 2/,
    );
    await assert.rejects(
      loadCalibrationFile(`${dir}/none.json`, { numLayers: 2 }),
      (e: unknown) => {
        assert.ok(e instanceof CalibrationError);
        assert.match(
          e.message,
          /^Cannot read calibration file ".*none\.json": .*: check the path/,
        );
        assert.ok(e.cause instanceof Deno.errors.NotFound);
        return true;
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("estimateScales() divides amax by the format maximum, in fp32", () => {
  const keys = new Float32Array([0.5, -3, 2, Infinity, NaN]);
  const values = new Float32Array([0.25, -0.125]);
  const fp8 = estimateScales(keys, values, "fp8_e4m3");
  assert.deepEqual(fp8, {
    kScale: Math.fround(3 / 448),
    vScale: Math.fround(0.25 / 448),
    kZeroPoint: 0,
    vZeroPoint: 0,
  });
  assert.equal(
    estimateScales(keys, values, "fp8_e5m2").kScale,
    Math.fround(3 / 57344),
  );
  assert.equal(
    estimateScales(keys, values, "int8").kScale,
    Math.fround(3 / 127),
  );
  assert.equal(estimateScales(keys, values, "bf16"), DEFAULT_SCALES);
  const zeros = new Float32Array(8);
  assert.deepEqual(estimateScales(zeros, zeros, "fp8_e4m3"), DEFAULT_SCALES);
  assert.deepEqual(
    estimateScales(zeros, zeros, "int8", { zeroPoint: true }),
    DEFAULT_SCALES,
  );
});

Deno.test("estimateScales() with a zero point maps min and max to -128 and 127", () => {
  const keys = new Float32Array([1, 5, 2.5, 3]); // range widened to [0, 5]
  const values = new Float32Array([-4, 1, -1]);
  const s = estimateScales(keys, values, "int8", { zeroPoint: true });
  assert.equal(s.kScale, Math.fround(5 / 255));
  assert.equal(s.kZeroPoint, -128);
  assert.equal(encodeInt8(5, s.kScale, s.kZeroPoint), 127);
  assert.equal(encodeInt8(0, s.kScale, s.kZeroPoint), -128);
  assert.equal(s.vScale, Math.fround(5 / 255));
  assert.equal(s.vZeroPoint, 76); // round(-128 + 4 / (5 / 255)) = round(76)
  assert.equal(encodeInt8(-4, s.vScale, s.vZeroPoint), -128);
  assert.equal(encodeInt8(1, s.vScale, s.vZeroPoint), 127);
});

Deno.test("defaultScales() warns exactly once per fp8 dtype and stays silent for 16/32-bit", () => {
  const seen: string[] = [];
  const warn = (m: string) => seen.push(m);
  for (let i = 0; i < 3; i++) {
    assert.equal(defaultScales("fp8_e5m2", warn), DEFAULT_SCALES);
    assert.equal(defaultScales("fp32", warn), DEFAULT_SCALES);
    assert.equal(defaultScales("bf16", warn), DEFAULT_SCALES);
  }
  assert.deepEqual(seen, [
    "Using KV cache scaling factor 1.0 for fp8_e5m2: this may cause accuracy issues; pass a calibration file or let the first batch estimate the scales",
  ]);
});

Deno.test("defaultScales() refuses int8 and names the three ways out", () => {
  assert.throws(() => defaultScales("int8", () => {}), (e: unknown) => {
    assert.ok(e instanceof CalibrationError);
    for (const f of ["calibration file", "first batch", "per_token_head"]) {
      assert.ok(e.message.includes(f));
    }
    return true;
  });
});

Deno.test("resolveLayerScales() prefers the calibration, then the first batch, then the default", () => {
  const calibration = parseCalibrationFile(file(3), { numLayers: 3 });
  const batch = {
    keys: new Float32Array([448 * 2]),
    values: new Float32Array([448 / 4]),
  };
  const firstBatch = (l: number) => (l === 1 ? batch : undefined);
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  const base = { dtype: "fp8_e4m3" as const, numLayers: 3, warn };
  assert.deepEqual(
    resolveLayerScales({ ...base, calibration, firstBatch }),
    calibration,
  );
  const resolved = resolveLayerScales({ ...base, firstBatch });
  assert.deepEqual(resolved.map((s) => [s.kScale, s.vScale]), [[1, 1], [
    2,
    0.25,
  ], [1, 1]]);
  resolveLayerScales({ ...base });
  assert.equal(warnings.length, 1); // once per process, not once per layer or call
  assert.throws(
    () => resolveLayerScales({ ...base, calibration: calibration.slice(1) }),
    /has 2 layers but the model has 3/,
  );
});

Deno.test("resolveLayerScales() gives 16/32-bit and per-token-head int8 caches scale 1 without warning", () => {
  const warn = () => assert.fail("no warning expected");
  const calibration: LayerKvScales[] = [{
    kScale: 5,
    vScale: 5,
    kZeroPoint: 0,
    vZeroPoint: 0,
  }];
  for (const dtype of ["fp32", "fp16", "bf16"] as const) {
    assert.deepEqual(
      resolveLayerScales({ dtype, numLayers: 2, calibration, warn }),
      [DEFAULT_SCALES, DEFAULT_SCALES],
    );
  }
  assert.deepEqual(
    resolveLayerScales({
      dtype: "int8",
      numLayers: 1,
      int8Scheme: "per_token_head",
      warn,
    }),
    [DEFAULT_SCALES],
  );
  assert.throws(
    () => resolveLayerScales({ dtype: "int8", numLayers: 1, warn }),
    CalibrationError,
  );
  const batch = {
    keys: new Float32Array([-2, 6]),
    values: new Float32Array([1]),
  };
  const [s] = resolveLayerScales({
    dtype: "int8",
    numLayers: 1,
    zeroPoint: true,
    firstBatch: () => batch,
  });
  assert.equal(s.kScale, Math.fround(8 / 255));
  assert.equal(s.kZeroPoint, encodeInt8(0, s.kScale, s.kZeroPoint));
});
