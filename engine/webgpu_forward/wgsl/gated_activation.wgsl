// The gated MLP's middle, in place: gate = act(gate) * up, with act SiLU
// (SwiGLU, ACT 0) or tanh-approximated GELU (GeGLU, ACT 1), as
// engine/ops.ts computes them.

override ACT: u32 = 0u;
const WG: u32 = 64u;
const GELU_C: f32 = 0.7978845608028654; // sqrt(2 / pi)

struct Params {
  count: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * groups.x) * WG + lid;
  if (i >= params.count) { return; }
  let g = gate[i];
  var a: f32;
  if (ACT == 0u) {
    a = g / (1.0 + exp(-g)); // exp overflow gives g / inf = -0, the limit
  } else {
    let inner = clamp(GELU_C * (g + 0.044715 * g * g * g), -15.0, 15.0);
    a = 0.5 * g * (1.0 + tanh(inner));
  }
  gate[i] = a * up[i];
}
