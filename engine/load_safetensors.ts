/**
 * Loads a checkpoint's tensors from disk: one `model.safetensors`, or the
 * shards a `model.safetensors.index.json` lists in its `weight_map`.
 *
 * @module
 */

import {
  parseSafetensors,
  SafetensorsError,
  type Tensor,
} from "./safetensors.ts";

/** Options for {@linkcode loadSafetensors}. */
export interface LoadSafetensorsOptions {
  /** Which tensors to convert (others are skipped unchecked). Default: all. */
  readonly only?: (name: string) => boolean;
}

const INDEX = "model.safetensors.index.json";
const SINGLE = "model.safetensors";

/**
 * Reads every tensor of a checkpoint. `path` is a `.safetensors` file, an
 * index file, or a model directory (the index is preferred when both exist,
 * as transformers does).
 *
 * @example Usage
 * ```ts
 * import { loadSafetensors } from "./load_safetensors.ts";
 * import { encodeSafetensors } from "./safetensors_write.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/model.safetensors`, encodeSafetensors({
 *   bias: { dtype: "F32", shape: [1], data: Float32Array.of(2) },
 * }));
 * const tensors = await loadSafetensors(dir);
 * assert.equal(tensors.get("bias")!.data[0], 2);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadSafetensors(
  path: string,
  options: LoadSafetensorsOptions = {},
): Promise<Map<string, Tensor>> {
  let file = path;
  if (await isDirectory(path)) {
    file = await exists(`${path}/${INDEX}`)
      ? `${path}/${INDEX}`
      : `${path}/${SINGLE}`;
  }
  if (!file.endsWith(".json")) {
    return parseSafetensors(await read(file), { file, only: options.only });
  }
  const dir = file.slice(0, file.lastIndexOf("/") + 1) || "./";
  const shards = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(await readWeightMap(file))) {
    if (options.only && !options.only(name)) continue;
    shards.set(shard, [...(shards.get(shard) ?? []), name]);
  }
  const tensors = new Map<string, Tensor>();
  for (const [shard, names] of shards) {
    const wanted = new Set(names);
    const shardFile = dir + shard;
    const got = parseSafetensors(await read(shardFile), {
      file: shardFile,
      only: (name) => wanted.has(name),
    });
    for (const name of names) {
      const tensor = got.get(name);
      if (tensor === undefined) {
        throw new SafetensorsError(
          `${shardFile}: Tensor "${name}" is missing, though ${file} maps it to this shard`,
        );
      }
      tensors.set(name, tensor);
    }
  }
  return tensors;
}

async function readWeightMap(file: string): Promise<Record<string, string>> {
  let index: { weight_map?: unknown };
  try {
    index = JSON.parse(await Deno.readTextFile(file));
  } catch (cause) {
    throw new SafetensorsError(
      `${file}: Cannot read the index: ${(cause as Error).message}`,
      { cause },
    );
  }
  const map = index?.weight_map;
  if (
    typeof map !== "object" || map === null ||
    !Object.values(map).every((v) => typeof v === "string")
  ) {
    throw new SafetensorsError(
      `${file}: weight_map must map tensor names to shard file names`,
    );
  }
  return map as Record<string, string>;
}

async function read(file: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(file);
  } catch (cause) {
    throw new SafetensorsError(
      `${file}: Cannot read the checkpoint: ${(cause as Error).message}`,
      { cause },
    );
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
