// int8 arithmetic on four codes packed in a u32, with the WGSL builtins of
// the `packed_4x8_integer_dot_product` language feature (used when
// navigator.gpu.wgslLanguageFeatures has it; dot_shift.wgsl otherwise).
// dot4I8Packed is exact: four products of int8 values summed in i32.

fn dot_i8x4(a: u32, b: u32) -> i32 {
  return dot4I8Packed(a, b);
}

fn unpack_i8x4(w: u32) -> vec4<i32> {
  return unpack4xI8(w);
}
