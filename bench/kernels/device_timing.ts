/**
 * Timing attention on the device through DeviceResidentAttention: Q and the
 * output stay in GPU buffers and many calls go into one submission, so the
 * time is the kernels' own (webgpu/device_attention.ts).
 *
 * @module
 */

import { withPlan } from "../../core/plan_fallback.ts";
import type { AttentionBackend, LayerCache } from "../../core/backend.ts";
import type { PlannedBatch } from "../../core/batch.ts";
import {
  createBufferFrom,
  type DeviceResidentAttention,
  readBuffer,
} from "../../webgpu/mod.ts";
import { percentile } from "../stats.ts";
import { clockCoverage, sampleGpu } from "./gpu_timing.ts";
import { assertFinite, type Timing, type TimingBudget } from "./host_timing.ts";

/** Times `encodeAttend()`; checks the output of the warm-up for NaN/inf. */
export async function timeEncodeAttend(
  backend: AttentionBackend & DeviceResidentAttention,
  cache: LayerCache,
  batch: PlannedBatch,
  query: Float32Array,
  budget: TimingBudget,
): Promise<Timing> {
  const { device } = backend;
  const plan = withPlan(backend).plan(batch);
  const q = createBufferFrom(device, query, GPUBufferUsage.STORAGE);
  const out = device.createBuffer({
    size: Math.max(16, query.byteLength),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  });
  try {
    const record = (encoder: GPUCommandEncoder) => {
      const work = backend.encodeAttend(encoder, cache, plan, {
        query: q,
        out,
      });
      return () => work.release();
    };
    const { samples } = await sampleGpu(device, record, budget);
    const result = new Float32Array(
      await readBuffer(device, out, 0, query.byteLength),
    );
    assertFinite(result, `${backend.name}/${backend.target}`);
    const ms = samples.map((s) => s.ms);
    return {
      ms: percentile(ms, 50),
      minMs: Math.min(...ms),
      samples: samples.length,
      method:
        `encodeAttend(), Q and output on the device, calls batched into submissions of about 20 ms, ${
          samples[0].clock
        }`,
      clockCoverage: clockCoverage(samples),
    };
  } finally {
    q.destroy();
    out.destroy();
  }
}
