/**
 * `deno task bench kernels`: attention kernel time for each backend and KV
 * dtype over context lengths, batch sizes, shapes and modes, with the
 * effective GB/s of KV read, its fraction of this machine's memory
 * bandwidth (measured by the same command) and the 8-bit/16-bit time
 * ratio; optionally torch SDPA as a reference. See `--help`.
 *
 * @module
 */

import { UsageError } from "../tools/cli_options.ts";
import { sharedWebGpuDevice, type WebGpuDeviceInfo } from "../webgpu/mod.ts";
import {
  type Bandwidth,
  deviceCopyBandwidth,
  hostReadBandwidth,
} from "./kernels/bandwidth.ts";
import {
  type KernelBenchOptions,
  KERNELS_HELP,
  parseKernelArgs,
} from "./kernels/options.ts";
import { kernelTables, writeKernelReport } from "./kernels/report.ts";
import { kernelSettings, loadBackends, runGrid } from "./kernels/run.ts";
import { runTorch } from "./kernels/torch.ts";
import { loadAverage, machineInfo } from "./machine.ts";

const HELP = `Usage: deno task bench kernels [options]

Times paged attention through the backend contract for every backend whose
--target is available and whose capabilities accept the layer (the others
are listed with the reason), on Llama-3.1-8B-like and Gemma-2-like layers.
Measures the memory bandwidth in the same run (native: a multi-threaded
streaming read; webgpu: a large buffer copy) and writes
<out>/kernels-<target>[-<adapter>].md and .svg.

${KERNELS_HELP}`;

/** Runs the benchmark; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let o: KernelBenchOptions;
  try {
    o = parseKernelArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(
      `error: ${error.message}: see deno task bench kernels --help`,
    );
    return 2;
  }
  if (o.help) {
    console.log(HELP);
    return 0;
  }
  try {
    await run(o, `deno task bench kernels ${args.join(" ")}`.trim());
    return 0;
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    return 1;
  }
}

async function measureBandwidth(
  o: KernelBenchOptions,
  gpu: WebGpuDeviceInfo | undefined,
): Promise<Bandwidth> {
  return gpu
    ? await deviceCopyBandwidth(gpu.device, o.bandwidthBytes)
    : hostReadBandwidth(o.bandwidthBytes);
}

/** The higher of two measurements, saying both. */
function better(before: Bandwidth, after: Bandwidth): Bandwidth {
  if (!before.gbPerS || !after.gbPerS) return before;
  const best = Math.max(before.gbPerS, after.gbPerS);
  return {
    gbPerS: best,
    how: `${before.how}; the higher of ${
      before.gbPerS.toFixed(2)
    } (before the kernels) and ${after.gbPerS.toFixed(2)} GB/s (after)`,
  };
}

async function run(o: KernelBenchOptions, command: string): Promise<void> {
  const machine = await machineInfo();
  const notes: string[] = [];
  let gpu: WebGpuDeviceInfo | undefined;
  if (o.target === "webgpu") {
    gpu = await sharedWebGpuDevice();
    console.log(`WebGPU adapter: ${gpu.adapterName}`);
    if (
      gpu.isFallbackAdapter ||
      /llvmpipe|lavapipe|swiftshader|warp/i.test(gpu.adapterName)
    ) {
      notes.push(
        `${gpu.adapterName} is a software adapter (the CPU): its figures are not GPU claims`,
      );
    }
  }
  // Loaded (and their settings checked) before the bandwidth measurement,
  // so a bad --backend or --backend-setting fails at once.
  const definitions = await loadBackends(o.backends);
  kernelSettings(definitions, o);
  console.log(`Measuring memory bandwidth...`);
  const before = await measureBandwidth(o, gpu);
  console.log(
    `  ${
      before.gbPerS ? `${before.gbPerS.toFixed(2)} GB/s: ` : ""
    }${before.how}`,
  );
  const grid = await runGrid(definitions, o, (line) => console.log(line));
  const bandwidth = better(before, await measureBandwidth(o, gpu));
  const torchWanted = o.torch === "yes" ||
    (o.torch === "auto" && o.target === "webgpu");
  const torch = torchWanted ? await runTorch(o) : undefined;
  if (torch) {
    for (const s of torch.skips) console.log(`  skip ${s.what}: ${s.reason}`);
    notes.push(...torch.notes);
  }
  notes.push(
    `1-minute load average at the end: ${await loadAverage()} (${machine.cores} cores)`,
  );
  const report = {
    target: o.target,
    adapter: gpu?.adapterName,
    command,
    machine,
    bandwidth,
    torchBandwidth: torch?.bandwidth,
    shapes: o.shapes,
    rows: [...grid.rows, ...(torch?.rows ?? [])],
    skips: [...grid.skips, ...(torch?.skips ?? [])],
    notes,
  };
  console.log(`\n${kernelTables(report)}`);
  const paths = await writeKernelReport(o.outDir, report);
  console.log(`Wrote ${paths.join(", ")}`);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
