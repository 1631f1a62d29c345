// int8 arithmetic on four codes packed in a u32 without the
// `packed_4x8_integer_dot_product` language feature: each byte is
// sign-extended by shifting it to the top of an i32 and back (arithmetic
// shift). Same results as dot_builtin.wgsl, bit for bit.

fn unpack_i8x4(w: u32) -> vec4<i32> {
  let s = bitcast<i32>(w);
  return vec4<i32>((s << 24u) >> 24u, (s << 16u) >> 24u, (s << 8u) >> 24u, s >> 24u);
}

fn dot_i8x4(a: u32, b: u32) -> i32 {
  return dot(unpack_i8x4(a), unpack_i8x4(b));
}
