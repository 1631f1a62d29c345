// Embedding gather: x[t, :] = embed[tokens[t], :] * scale (Gemma scales by
// sqrt(hidden) rounded to fp32, others by 1). One workgroup per token; one
// f32 multiply per element, so the result equals the TypeScript oracle's.

const WG: u32 = 64u;

struct Params {
  num_tokens: u32,
  hidden: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> tokens: array<u32>; // [num_tokens]
@group(0) @binding(2) var<storage, read> embed: array<f32>; // [vocab, hidden]
@group(0) @binding(3) var<storage, read_write> x: array<f32>; // [num_tokens, hidden]

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let t = wid.x + wid.y * groups.x;
  if (t >= params.num_tokens) { return; }
  let src = tokens[t] * params.hidden;
  let dst = t * params.hidden;
  for (var i = lid; i < params.hidden; i += WG) {
    x[dst + i] = embed[src + i] * params.scale;
  }
}
