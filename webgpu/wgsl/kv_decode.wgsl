// Dequantize on load: four consecutive elements of a cache row at a time.
// Each value is fp32(code value * scale), the same product core's codecs
// compute, so the kernels read exactly what readCache() reports.

// NaN built at run time: a constant NaN is a WGSL shader-creation error.
fn nan_with_sign(c: u32) -> f32 {
  return bitcast<f32>(0x7fc00000u | ((c & 0x80u) << 24u));
}

fn e4m3_value(c: u32) -> f32 {
  let e = (c >> 3u) & 0xfu;
  let m = c & 7u;
  if (e == 15u && m == 7u) { return nan_with_sign(c); }
  var v = f32(m) * 0.001953125; // subnormal: m * 2^-9
  if (e != 0u) { v = bitcast<f32>(((e + 120u) << 23u) | (m << 20u)); }
  return select(v, -v, (c & 0x80u) != 0u);
}

fn e5m2_value(c: u32) -> f32 {
  let e = (c >> 2u) & 0x1fu;
  let m = c & 3u;
  if (e == 31u && m != 0u) { return nan_with_sign(c); }
  var v = f32(m) * 0.0000152587890625; // subnormal: m * 2^-16
  if (e == 31u) {
    v = bitcast<f32>(0x7f800000u);
  } else if (e != 0u) {
    v = bitcast<f32>(((e + 112u) << 23u) | (m << 21u));
  }
  return select(v, -v, (c & 0x80u) != 0u);
}

fn dequant8(dtype: u32, word: u32, i: u32, scale: f32, zp: i32) -> f32 {
  let c = (word >> (8u * i)) & 0xffu;
  if (dtype == DT_FP8_E4M3) { return e4m3_value(c) * scale; }
  if (dtype == DT_FP8_E5M2) { return e5m2_value(c) * scale; }
  return f32(extractBits(i32(word), 8u * i, 8u) - zp) * scale;
}

// Four 8-bit codes of one word, dequantized: fp8 as value * scale, int8 as
// (q - zp) * scale. Unrolled by hand: llvmpipe stops every loop of a shader
// invocation after 65535 iterations in all (gallivm's loop limiter), so
// kernels keep their loop counts small and bounded (see decode.wgsl).
fn dequant8x4(dtype: u32, word: u32, scale: f32, zp: i32) -> vec4<f32> {
  return vec4<f32>(
    dequant8(dtype, word, 0u, scale, zp),
    dequant8(dtype, word, 1u, scale, zp),
    dequant8(dtype, word, 2u, scale, zp),
    dequant8(dtype, word, 3u, scale, zp),
  );
}

// Two bf16 values of one word, element 0 in the low half.
fn bf16x2(word: u32) -> vec2<f32> {
  return vec2<f32>(bitcast<f32>(word << 16u), bitcast<f32>(word & 0xffff0000u));
}

// Elements 4g..4g+3 of a row that starts at word `row`, given a loader for
// that row's words. WGSL cannot pass storage pointers to functions, so each
// kernel supplies `load_word(which, index)` (which: 0 = K, 1 = V).
fn dequant4(dtype: u32, which: u32, row: u32, g: u32, scale: f32, zp: i32) -> vec4<f32> {
  switch dtype {
    case DT_FP32: {
      let b = row + 4u * g;
      return bitcast<vec4<f32>>(vec4<u32>(
        load_word(which, b), load_word(which, b + 1u),
        load_word(which, b + 2u), load_word(which, b + 3u),
      ));
    }
    case DT_FP16: {
      let b = row + 2u * g;
      return vec4<f32>(unpack2x16float(load_word(which, b)), unpack2x16float(load_word(which, b + 1u)));
    }
    case DT_BF16: {
      let b = row + 2u * g;
      return vec4<f32>(bf16x2(load_word(which, b)), bf16x2(load_word(which, b + 1u)));
    }
    default: { return dequant8x4(dtype, load_word(which, row + g), scale, zp); }
  }
}
