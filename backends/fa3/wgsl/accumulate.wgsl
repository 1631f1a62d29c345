// The low-precision accumulator of fa3's two-level accumulation, emulated
// on bits: every add (and every rescale) into it is rounded to bf16 (8
// significant bits, fp32's exponent range), to nearest even, as
// bench/accuracy/low_precision_emulation.ts's `roundToBits(x, 7)` does.
// Infinities and NaN pass through unchanged.

fn acc_round(x: f32) -> f32 {
  let u = bitcast<u32>(x);
  if ((u & 0x7f800000u) == 0x7f800000u) { return x; }
  return bitcast<f32>((u + 0x7fffu + ((u >> 16u) & 1u)) & 0xffff0000u);
}

fn acc_round4(x: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(acc_round(x.x), acc_round(x.y), acc_round(x.z), acc_round(x.w));
}

// Four e4m3 codes of a word as values (before any scale), by bit
// operations (e4m3_value, webgpu/wgsl/kv_decode.wgsl).
fn e4m3x4(w: u32) -> vec4<f32> {
  return vec4<f32>(
    e4m3_value(w & 0xffu), e4m3_value((w >> 8u) & 0xffu),
    e4m3_value((w >> 16u) & 0xffu), e4m3_value(w >> 24u),
  );
}
