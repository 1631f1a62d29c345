/**
 * The torch reference: runs bench/kernels_torch.py (bf16
 * scaled_dot_product_attention on CUDA over the grid's decode shapes) in
 * the same command, and turns its answer into rows of the same table. When
 * python3, torch or CUDA is missing, the answer is a skip with the reason.
 *
 * @module
 */

import type { Bandwidth } from "./bandwidth.ts";
import type { KernelBenchOptions } from "./options.ts";
import type { KernelRow, Skip } from "./run.ts";
import { attentionFlops, kvBytesRead, layerFor } from "./shapes.ts";

/** What the torch run gave. */
export interface TorchResult {
  readonly rows: KernelRow[];
  readonly skips: Skip[];
  readonly bandwidth?: Bandwidth;
  readonly notes: string[];
}

const SCRIPT = new URL("../kernels_torch.py", import.meta.url);

/** Runs the torch reference over the decode points of `o`'s grid. */
export async function runTorch(o: KernelBenchOptions): Promise<TorchResult> {
  const points = [];
  const skips: Skip[] = [];
  for (const shape of o.shapes) {
    for (const context of o.contexts) {
      for (const batch of o.batches) {
        const bytes = kvBytesRead(layerFor(shape, "bf16"), context, batch);
        if (bytes > o.maxKvBytes) continue; // the same bound as the kernels
        points.push({ shape: shape.name, ...shape, context, batch });
      }
    }
  }
  let answer;
  try {
    const child = new Deno.Command("python3", {
      args: [SCRIPT.pathname],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(JSON.stringify({
      points,
      repeat: o.repeat,
      minTimeMs: o.minTimeMs,
      copyBytes: o.bandwidthBytes,
    })));
    await writer.close();
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (!out.success) {
      const err = new TextDecoder().decode(out.stderr).trim().split("\n").at(
        -1,
      );
      throw new Error(`bench/kernels_torch.py exited ${out.code}: ${err}`);
    }
    answer = JSON.parse(text.split("\n").at(-1)!);
  } catch (e) {
    const reason = e instanceof Deno.errors.NotFound
      ? "python3 was not found"
      : (e as Error).message;
    return { rows: [], skips: [{ what: "torch sdpa", reason }], notes: [] };
  }
  if (answer.skipped) {
    return {
      rows: [],
      skips: [{ what: "torch sdpa", reason: answer.skipped }],
      notes: [],
    };
  }
  const rows: KernelRow[] = answer.rows.map((r: Record<string, never>) => {
    const shape = o.shapes.find((s) => s.name === r.shape)!;
    const layer = layerFor(shape, "bf16");
    return {
      backend: "torch sdpa",
      target: "cuda",
      shape: shape.name,
      dtype: "bf16",
      mode: "decode",
      context: r.context,
      batch: r.batch,
      ms: r.ms,
      minMs: r.minMs,
      samples: r.samples,
      method: r.method,
      kvBytes: kvBytesRead(layer, r.context, r.batch),
      flops: attentionFlops(layer, r.context, r.batch, 1),
    };
  });
  const notes = [
    `torch sdpa/cuda: torch ${answer.torch} on ${answer.device}, contiguous bf16 K/V (not paged), decode only${
      o.shapes.some((s) => s.softCap !== undefined)
        ? "; without the logit soft-cap (SDPA has none)"
        : ""
    }`,
  ];
  return {
    rows,
    skips: [...skips, ...answer.skips],
    bandwidth: answer.copy,
    notes,
  };
}
