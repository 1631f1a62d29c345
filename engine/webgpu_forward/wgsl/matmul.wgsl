// out = x W^T (+ bias) (then cap * tanh(out / cap) for Gemma 2's final
// logits), W as PyTorch stores nn.Linear: [m, k] row-major. Each workgroup
// computes a tile of 4 rows of x by TM rows of W; every step of TK along k
// stages both tiles in workgroup memory with coalesced loads (consecutive
// invocations read consecutive k), then each invocation accumulates one
// output column for the tile's 4 rows in four named f32 accumulators.
// (No dynamically indexed private array or vector: with one, llvmpipe's
// LLVM took minutes to compile this kernel.)

override HAS_BIAS: bool = false;
override SOFTCAP: bool = false;
const TM: u32 = 64u; // output columns per workgroup = invocations
const TK: u32 = 32u;
const TN: u32 = 4u; // rows of x per workgroup: the vec4's lanes
const WPAD: u32 = TK + 1u; // padding keeps a column's reads off one bank

struct Params {
  n: u32,
  m: u32,
  k: u32,
  cap: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>; // [n, k]
@group(0) @binding(2) var<storage, read> w: array<f32>; // [m, k]
@group(0) @binding(3) var<storage, read> bias: array<f32>; // [m] when HAS_BIAS
@group(0) @binding(4) var<storage, read_write> out: array<f32>; // [n, m]

var<workgroup> ws: array<f32, TM * WPAD>;
var<workgroup> xs: array<f32, TN * TK>; // xs[r * TK + c] = x[i0 + r, k0 + c]

// tanh of a clamped argument: |x| >= 15 is +-1 in f32 and exp() would overflow.
fn safe_tanh(v: f32) -> f32 {
  return tanh(clamp(v, -15.0, 15.0));
}

fn store(i: u32, j: u32, acc: f32) {
  if (i >= params.n) { return; }
  var v = acc;
  if (HAS_BIAS) { v += bias[j]; }
  if (SOFTCAP) { v = params.cap * safe_tanh(v / params.cap); }
  out[i * params.m + j] = v;
}

@compute @workgroup_size(TM)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let j0 = wid.x * TM;
  let i0 = wid.y * TN;
  var a0 = 0.0;
  var a1 = 0.0;
  var a2 = 0.0;
  var a3 = 0.0;
  for (var k0 = 0u; k0 < params.k; k0 += TK) {
    for (var e = lid; e < TM * TK; e += TM) {
      let r = e / TK;
      let c = e % TK;
      var v = 0.0;
      if (j0 + r < params.m && k0 + c < params.k) {
        v = w[(j0 + r) * params.k + k0 + c];
      }
      ws[r * WPAD + c] = v;
    }
    for (var e = lid; e < TN * TK; e += TM) {
      let r = e / TK;
      let c = e % TK;
      var v = 0.0;
      if (i0 + r < params.n && k0 + c < params.k) {
        v = x[(i0 + r) * params.k + k0 + c];
      }
      xs[e] = v;
    }
    workgroupBarrier();
    for (var c = 0u; c < TK; c++) {
      let wv = ws[lid * WPAD + c];
      a0 += xs[c] * wv;
      a1 += xs[TK + c] * wv;
      a2 += xs[2u * TK + c] * wv;
      a3 += xs[3u * TK + c] * wv;
    }
    workgroupBarrier();
  }
  let j = j0 + lid;
  if (j >= params.m) { return; }
  store(i0, j, a0);
  store(i0 + 1u, j, a1);
  store(i0 + 2u, j, a2);
  store(i0 + 3u, j, a3);
}
