// Exact quantization, on bits only. The formats (core/fp8_e4m3.ts,
// fp8_e5m2.ts, int8.ts, fp16.ts, bf16.ts) quantize fp32(x / scale) with one
// correctly rounded fp32 division; WGSL's f32 `/` may be 2.5 ULP off, and a
// GPU may flush subnormals, so the quotient is computed here by integer long
// division and every rounding is done on integer bits. Codes then match the
// TypeScript codecs bit for bit on any adapter.

// Rounds m / 2^s to nearest, ties to even; `sticky` says nonzero bits were
// already dropped below m. Needs m < 2^31.
fn rne_shift(m: u32, s: u32, sticky: bool) -> u32 {
  if (s == 0u) { return m; }
  if (s >= 32u) { return 0u; }
  let kept = m >> s;
  let rest = m & ((1u << s) - 1u);
  let half = 1u << (s - 1u);
  let up = rest > half || (rest == half && (sticky || (kept & 1u) == 1u));
  return kept + select(0u, 1u, up);
}

// Mantissa with its leading 1 at bit 23 and the matching biased exponent
// (below 1 for subnormals), for a nonzero finite magnitude `a`.
fn normalize(a: u32) -> vec2<i32> {
  let e = i32(a >> 23u);
  if (e != 0) { return vec2<i32>(i32((a & 0x7fffffu) | 0x800000u), e); }
  let shift = countLeadingZeros(a) - 8u;
  return vec2<i32>(i32(a << shift), 1 - i32(shift));
}

// Bits of fp32(x / s), correctly rounded, for fp32 bits x and a positive
// finite s (subnormal s included).
fn div_rn(x: u32, s: u32) -> u32 {
  let sign = x & 0x80000000u;
  let ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) { return 0x7fc00000u; }
  if (ax == 0x7f800000u || ax == 0u) { return x; }
  let nx = normalize(ax);
  let ns = normalize(s);
  let ms = u32(ns.x);
  var r = u32(nx.x);
  var e = nx.y - ns.y;
  if (r < ms) {
    r = r << 1u;
    e -= 1;
  }
  // ms <= r < 2 ms: 26 quotient bits (1 integer + 23 kept + guard + round).
  var q = 0u;
  for (var i = 0u; i < 26u; i++) {
    q = q << 1u;
    if (r >= ms) {
      r -= ms;
      q |= 1u;
    }
    r = r << 1u;
  }
  let be = e + 127;
  if (be >= 255) { return sign | 0x7f800000u; }
  if (be >= 1) {
    // A carry out of the mantissa lands on the next exponent, or on inf.
    return sign | ((u32(be - 1) << 23u) + rne_shift(q, 2u, r != 0u));
  }
  return sign | rne_shift(q, u32(3 - be), r != 0u);
}

// round_half_even(|y| * 2^k) for the fp32 magnitude bits `a`, when that
// leaves at least one fraction bit to round away (small |y| only).
fn scaled_rne(a: u32, k: u32) -> u32 {
  let e = a >> 23u;
  let mant = select(a & 0x7fffffu, (a & 0x7fffffu) | 0x800000u, e > 0u);
  return rne_shift(mant, 150u - k - max(e, 1u), false);
}

fn encode_e4m3(y: u32) -> u32 {
  let sign = (y >> 24u) & 0x80u;
  let a = y & 0x7fffffffu;
  if (a > 0x7f800000u) { return 0x7fu; }
  if (a > 0x43e00000u) { return sign | 0x7eu; } // beyond 448: saturate
  if (a >= 0x3c800000u) {
    // Rebias by (127 - 7) << 23, then round away 20 mantissa bits.
    return sign | ((a - 0x3c000000u + 0x7ffffu + ((a >> 20u) & 1u)) >> 20u);
  }
  return sign | scaled_rne(a, 9u); // subnormal: |y| * 2^9
}

// `x_inf`: the unscaled input was infinite (a finite one never becomes inf).
fn encode_e5m2(y: u32, x_inf: bool) -> u32 {
  let sign = (y >> 24u) & 0x80u;
  let a = y & 0x7fffffffu;
  if (a > 0x7f800000u) { return 0x7eu; }
  if (a > 0x47600000u) { return sign | select(0x7bu, 0x7cu, x_inf); }
  if (a >= 0x38800000u) {
    return sign | ((a - 0x38000000u + 0xfffffu + ((a >> 21u) & 1u)) >> 21u);
  }
  return sign | scaled_rne(a, 16u);
}

// The int8 code as a byte (0..255): NaN is the zero point, |y| >= 1024
// clamps like 1024 (the same bound for every zero point).
fn encode_int8(y: u32, zp: i32) -> u32 {
  let a = y & 0x7fffffffu;
  var q = zp;
  if (a <= 0x7f800000u) {
    var r = 1024;
    if (a < 0x44800000u) { r = i32(scaled_rne(a, 0u)); }
    q = clamp(select(r, -r, (y >> 31u) == 1u) + zp, -128, 127);
  }
  return u32(q) & 0xffu;
}

fn encode_fp16(x: u32) -> u32 {
  let sign = (x >> 16u) & 0x8000u;
  let a = x & 0x7fffffffu;
  if (a >= 0x47800000u) { return sign | select(0x7c00u, 0x7e00u, a > 0x7f800000u); }
  if (a >= 0x38800000u) {
    return sign | ((a - 0x38000000u + 0xfffu + ((a >> 13u) & 1u)) >> 13u);
  }
  return sign | scaled_rne(a, 24u);
}

fn encode_bf16(x: u32) -> u32 {
  // NaN: set the quiet bit so that dropping payload bits cannot make inf.
  if ((x & 0x7fffffffu) > 0x7f800000u) { return (x >> 16u) | 0x40u; }
  return (x + 0x7fffu + ((x >> 16u) & 1u)) >> 16u;
}

// The code of fp32 bits `x` in `dtype`, with scale bits and zero point
// (ignored by the 16/32-bit dtypes, as core's codecs ignore them).
fn encode_code(dtype: u32, x: u32, scale: u32, zp: i32) -> u32 {
  switch dtype {
    case DT_FP32: { return x; }
    case DT_FP16: { return encode_fp16(x); }
    case DT_BF16: { return encode_bf16(x); }
    case DT_FP8_E4M3: { return encode_e4m3(div_rn(x, scale)); }
    case DT_FP8_E5M2: {
      return encode_e5m2(div_rn(x, scale), (x & 0x7fffffffu) == 0x7f800000u);
    }
    default: { return encode_int8(div_rn(x, scale), zp); }
  }
}
