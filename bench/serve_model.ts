/**
 * Loads the model the serving benchmark runs, once per process, with the
 * same pieces `deno task serve` uses (server/main.ts): the TypeScript
 * transformer, its tokenizer and max_position_embeddings as the context.
 *
 * @module
 */

import { Transformer } from "../engine/transformer.ts";
import type { ServeModel } from "./serve_run.ts";

/** A loaded model and one line describing it. */
export interface LoadedModel {
  readonly model: ServeModel;
  readonly description: string;
}

/**
 * Loads a model directory. The demo model is retrained in place now and
 * then, so a read that meets a half-written file is retried a few times.
 */
export async function loadServeModel(
  dir: string,
  o: { tries?: number; waitMs?: number } = {},
): Promise<LoadedModel> {
  const tries = o.tries ?? 3;
  for (let attempt = 1;; attempt++) {
    try {
      return await loadOnce(dir);
    } catch (error) {
      if (attempt >= tries) throw error;
      await new Promise((r) => setTimeout(r, o.waitMs ?? 2000));
    }
  }
}

async function loadOnce(dir: string): Promise<LoadedModel> {
  const transformer = await Transformer.load(dir);
  const raw = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  const tokenizer = transformer.tokenizer!;
  const spec = transformer.modelSpec;
  const maxModelLen = Number(raw.max_position_embeddings ?? 2048);
  const params = transformer.weights.layers.reduce(
    (sum, l) =>
      sum +
      [l.q, l.k, l.v, l.o, l.gate, l.up, l.down].reduce(
        (a, m) => a + m.data.length,
        0,
      ),
    transformer.weights.embed.data.length,
  );
  const c = transformer.config;
  return {
    model: {
      spec,
      vocabSize: c.vocabSize,
      maxModelLen,
      tokenizer,
      forward: (batch, attention) => transformer.forward(batch, attention),
    },
    description:
      `${spec.name} (${spec.modelType}, ${spec.layers.length} layers, hidden ${c.hiddenSize}, ${
        spec.layers[0]?.numQHeads
      }/${spec.layers[0]?.numKvHeads} q/kv heads of ${
        spec.layers[0]?.headDim
      }, ${
        (params / 1e6).toFixed(1)
      }M parameters in ${spec.dtype}, context ${maxModelLen}), loaded once from ${dir}`,
  };
}
