/**
 * Timing work on a WebGPU device with no read-back in the loop: the work
 * is recorded `iterations` times into one encoder and submitted once.
 * With the `timestamp-query` feature the GPU's own clock brackets the
 * work (two empty compute passes that write timestamps); without it, the
 * wall clock from submit to `onSubmittedWorkDone()`.
 *
 * @module
 */

/** One submission's time per iteration, and which clock took it. */
export interface GpuSample {
  readonly ms: number;
  readonly clock: "timestamp-query" | "wall clock";
  /** Wall milliseconds per iteration, submit to completion (a check on `ms`). */
  readonly wallMs: number;
}

/**
 * With timestamps, the fraction of the wall time (submit to completion)
 * they cover: a figure far below 1 on long submissions would mean the
 * driver's timestamp period is not 1 ns (WebGPU promises nanoseconds).
 */
export function clockCoverage(
  samples: readonly GpuSample[],
): number | undefined {
  if (samples[0].clock !== "timestamp-query") return undefined;
  const gpu = samples.reduce((a, s) => a + s.ms, 0);
  return gpu / samples.reduce((a, s) => a + s.wallMs, 0);
}

/**
 * Records `record` `iterations` times into one encoder, submits it and
 * returns the milliseconds per iteration. `record` returns what to free
 * once the work has completed.
 */
export async function timeSubmission(
  device: GPUDevice,
  iterations: number,
  record: (encoder: GPUCommandEncoder) => (() => void) | void,
): Promise<GpuSample> {
  const stamps = device.features.has("timestamp-query")
    ? device.createQuerySet({ type: "timestamp", count: 2 })
    : undefined;
  const encoder = device.createCommandEncoder();
  const bracket = (index: 0 | 1) => {
    if (!stamps) return;
    encoder.beginComputePass({
      timestampWrites: index === 0
        ? { querySet: stamps, beginningOfPassWriteIndex: 0 }
        : { querySet: stamps, endOfPassWriteIndex: 1 },
    }).end();
  };
  const releases: (() => void)[] = [];
  bracket(0);
  for (let i = 0; i < iterations; i++) {
    const release = record(encoder);
    if (release) releases.push(release);
  }
  bracket(1);
  let resolve: GPUBuffer | undefined, staging: GPUBuffer | undefined;
  if (stamps) {
    resolve = device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    staging = device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.resolveQuerySet(stamps, 0, 2, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, staging, 0, 16);
  }
  device.pushErrorScope("validation");
  const start = performance.now();
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
  const wallMs = performance.now() - start;
  const error = await device.popErrorScope();
  releases.forEach((r) => r());
  try {
    if (error) throw new Error(`WebGPU timing run failed: ${error.message}`);
    if (staging) {
      await staging.mapAsync(GPUMapMode.READ);
      const [begin, end] = new BigUint64Array(staging.getMappedRange());
      const ns = Number(end - begin);
      // Stamps left at 0, or a span longer than the wall clock around the
      // whole submission, are not to be trusted: the wall clock instead.
      if (ns > 0 && begin > 0n && ns / 1e6 <= wallMs * 1.05) {
        return {
          ms: ns / 1e6 / iterations,
          clock: "timestamp-query",
          wallMs: wallMs / iterations,
        };
      }
    }
    const per = wallMs / iterations;
    return { ms: per, clock: "wall clock", wallMs: per };
  } finally {
    stamps?.destroy();
    resolve?.destroy();
    staging?.destroy();
  }
}

/**
 * Samples `record` until `repeat` samples and `minTimeMs` of GPU time are
 * reached; each submission holds enough iterations to last about
 * `targetMs`, so that per-submission costs vanish. Returns every sample.
 */
export async function sampleGpu(
  device: GPUDevice,
  record: (encoder: GPUCommandEncoder) => (() => void) | void,
  budget: { readonly repeat: number; readonly minTimeMs: number },
  targetMs = 20,
): Promise<{ readonly samples: GpuSample[]; readonly iterations: number }> {
  const first = await timeSubmission(device, 1, record); // warm-up, calibration
  const iterations = Math.max(
    1,
    Math.min(256, Math.ceil(targetMs / Math.max(first.ms, 1e-3))),
  );
  const samples: GpuSample[] = [];
  let total = 0;
  while (
    samples.length < 1000 &&
    (samples.length < budget.repeat || total < budget.minTimeMs)
  ) {
    const s = await timeSubmission(device, iterations, record);
    samples.push(s);
    total += s.ms * iterations;
  }
  return { samples, iterations };
}
