/**
 * What the `model` section needs besides the measurement: the texts, a
 * one-sequence prefill batch with per-layer backends that record the K/V
 * they are asked to write (the "first batch" that dynamic scales come
 * from), and loading the demo model, which is still being trained and whose
 * files are replaced now and then.
 *
 * @module
 */

import type { AttentionBackend, WriteInput } from "../../core/backend.ts";
import { planBatch } from "../../core/batch.ts";
import type { ForwardBatch } from "../../engine/forward_batch.ts";
import { Transformer } from "../../engine/transformer.ts";

/** Ecclesiastes 3:1-8, King James Version (public domain). */
export const EVAL_TEXT =
  "To every thing there is a season, and a time to every purpose under the heaven: " +
  "A time to be born, and a time to die; a time to plant, and a time to pluck up that which is planted; " +
  "A time to kill, and a time to heal; a time to break down, and a time to build up; " +
  "A time to weep, and a time to laugh; a time to mourn, and a time to dance; " +
  "A time to cast away stones, and a time to gather stones together; a time to embrace, and a time to refrain from embracing; " +
  "A time to get, and a time to lose; a time to keep, and a time to cast away; " +
  "A time to rend, and a time to sew; a time to keep silence, and a time to speak; " +
  "A time to love, and a time to hate; a time of war, and a time of peace.";

/** Psalm 23, King James Version (public domain): where calibrated scales come from. */
export const CALIBRATION_TEXT =
  "The LORD is my shepherd; I shall not want. He maketh me to lie down in green pastures: " +
  "he leadeth me beside the still waters. He restoreth my soul: he leadeth me in the paths of " +
  "righteousness for his name's sake. Yea, though I walk through the valley of the shadow of death, " +
  "I will fear no evil: for thou art with me; thy rod and thy staff they comfort me.";

/** One layer's K/V as the forward pass wrote them. shape [numTokens, numKvHeads, headDim], float32 */
export interface Recorded {
  keys: Float32Array;
  values: Float32Array;
}

/**
 * A prefill of `ids` (positions 0..n-1 in blocks 0..numBlocks-1), logits at
 * every row, and one recording wrapper of `backend` per layer.
 */
export function prefillBatch(
  model: Transformer,
  backend: AttentionBackend,
  ids: readonly number[],
  blockSize = 16,
): {
  batch: ForwardBatch;
  numBlocks: number;
  blockSize: number;
  recorded: Recorded[];
  attention: AttentionBackend[];
} {
  const n = ids.length;
  const numBlocks = Math.ceil(n / blockSize);
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const batch: ForwardBatch = {
    tokens: Int32Array.from(ids),
    positions: all,
    slotMapping: all,
    plan: planBatch({
      queryStartLoc: Int32Array.of(0, n),
      seqLens: Int32Array.of(n),
      blockTables: Int32Array.from({ length: numBlocks }, (_, i) => i),
      maxBlocksPerSeq: numBlocks,
      blockSize,
    }),
    logitRows: all,
  };
  const recorded = model.modelSpec.layers.map(() => ({
    keys: new Float32Array(),
    values: new Float32Array(),
  }));
  const attention = recorded.map((rec) => {
    const wrapper: AttentionBackend = Object.create(backend);
    wrapper.write = (cache, input: WriteInput) => {
      rec.keys = input.keys.slice();
      rec.values = input.values.slice();
      return backend.write(cache, input);
    };
    return wrapper;
  });
  return { batch, numBlocks, blockSize, recorded, attention };
}

/**
 * Loads the model once, retrying a few times (the trainer replaces the
 * files every ~10 minutes), and describes the checkpoint: the last training
 * log step and the weights' modification time.
 */
export async function loadDemoModel(
  dir: string,
): Promise<{ model: Transformer; checkpoint: string }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      const [model, log, stat] = await Promise.all([
        Transformer.load(dir),
        Deno.readTextFile(`${dir}/training_log.txt`).catch(() => ""),
        Deno.stat(`${dir}/model.safetensors`),
      ]);
      const step = log.split("\n").filter((l) => l.startsWith("step ")).at(-1);
      const checkpoint = `${dir}, weights modified ${
        stat.mtime?.toISOString() ?? "?"
      }; last training log line: ${step ?? "none"}`;
      return { model, checkpoint };
    } catch (e) {
      lastError = e;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  throw new Error(
    `Cannot load the demo model from ${dir}: ${
      (lastError as Error)?.message
    }: train it with /usr/bin/python3 tools/train_tiny_model.py --out ${dir}`,
    { cause: lastError },
  );
}
