/**
 * The machine's memory bandwidth, measured in the same run as the kernels
 * so that "% of bandwidth" compares figures taken under the same load.
 *
 * - native (and reference): the addon's `streamRead`, every pool thread
 *   streaming its part of one large array, fastest of several passes;
 * - webgpu: a large `copyBufferToBuffer`, counted as read + write bytes
 *   (2N per copy of N bytes, as CUDA's bandwidthTest counts a device copy).
 *
 * @module
 */

import { probeNativeAddon } from "../../native/mod.ts";
import { clockCoverage, sampleGpu } from "./gpu_timing.ts";

/** A measured bandwidth, or why there is none. */
export type Bandwidth =
  | { readonly gbPerS: number; readonly how: string }
  | { readonly gbPerS?: undefined; readonly how: string };

const PASSES = 5;

/**
 * Streaming read bandwidth of host memory through the native addon.
 * The array is written first, so that every page is backed by its own
 * memory (untouched pages all map the one zero page and would read as
 * fast as cache).
 */
export function hostReadBandwidth(bytes: number): Bandwidth {
  const probe = probeNativeAddon();
  if (!probe.available) {
    return { how: `not measured: ${probe.reason}` };
  }
  if (typeof probe.addon.streamRead !== "function") {
    return {
      how:
        "not measured: the native addon has no streamRead (an older build): rebuild with deno task build:native",
    };
  }
  const size = Math.max(8, Math.floor(bytes / 8) * 8);
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) data[i] = i >>> 12;
  const { bestSeconds } = probe.addon.streamRead(data, PASSES);
  const gbPerS = size / bestSeconds / 1e9;
  return {
    gbPerS,
    how: `native streamRead of ${
      formatBytes(size)
    } over ${probe.addon.poolThreads()} threads, fastest of ${PASSES} passes`,
  };
}

/** Copy bandwidth of a WebGPU device (read + write bytes per second). */
export async function deviceCopyBandwidth(
  device: GPUDevice,
  bytes: number,
): Promise<Bandwidth> {
  const size = Math.max(
    16,
    Math.floor(Math.min(bytes, device.limits.maxBufferSize) / 16) * 16,
  );
  const src = device.createBuffer({
    size,
    usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  const dst = device.createBuffer({ size, usage: GPUBufferUsage.COPY_DST });
  try {
    // Touch the source once so that its memory is really allocated.
    device.queue.writeBuffer(src, 0, new Uint8Array(Math.min(size, 1 << 20)));
    const { samples, iterations } = await sampleGpu(
      device,
      (encoder) => encoder.copyBufferToBuffer(src, 0, dst, 0, size),
      { repeat: PASSES, minTimeMs: 0 },
      50,
    );
    const best = Math.min(...samples.map((s) => s.ms));
    return {
      gbPerS: 2 * size / (best / 1e3) / 1e9,
      how: `copyBufferToBuffer of ${
        formatBytes(size)
      } counted as read + write (2 x size), ${iterations} copies per submission, fastest of ${samples.length} (${
        samples[0].clock
      }${coverage(samples)})`,
    };
  } finally {
    src.destroy();
    dst.destroy();
  }
}

function coverage(samples: Parameters<typeof clockCoverage>[0]): string {
  const c = clockCoverage(samples);
  return c === undefined
    ? ""
    : `, covering ${(100 * c).toFixed(0)}% of the wall clock`;
}

/**
 * Bytes for people: 512 MiB, 1.5 GiB.
 *
 * @example Usage
 * ```ts
 * import { formatBytes } from "./bandwidth.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatBytes(2 ** 30), "1 GiB");
 * assert.equal(formatBytes(3 * 2 ** 19), "1.5 MiB");
 * ```
 */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${Number(n.toPrecision(3))} ${units[i]}`;
}
