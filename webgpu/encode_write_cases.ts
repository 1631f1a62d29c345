/**
 * Test support shared by the WebGPU backends' tests: encodeWrite() with
 * K/V and slots already on the device, at aligned non-zero offsets,
 * recorded into the caller's encoder, must store the codes (and
 * per-token-head scales) of core's codecs and of the host write(), bit for
 * bit, on values that hit the codecs' special paths. Padding (-1) is
 * skipped, and a buffer without STORAGE usage is refused by name.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { AttentionBackend, LayerCache } from "../core/backend.ts";
import {
  type BackendCapabilities,
  unsupportedReasons,
} from "../core/capabilities.ts";
import { codecFor } from "../core/codec.ts";
import { quantizeInt8PerTokenHead } from "../core/int8.ts";
import type { LayerConfig } from "../core/layer.ts";
import { mulberry32 } from "../core/prng.ts";
import type { LayerKvScales } from "../core/scales.ts";
import { createBufferFrom } from "./buffers.ts";
import type { DeviceWork, DeviceWriteIo } from "./device_attention.ts";

const VARIANTS: Partial<LayerConfig>[] = [
  { kvDtype: "fp32" },
  { kvDtype: "fp16" },
  { kvDtype: "bf16" },
  { kvDtype: "fp8_e4m3" },
  { kvDtype: "fp8_e5m2" },
  { kvDtype: "int8" },
  { kvDtype: "int8", int8Scheme: "per_token_head" },
];

function scalesOf(config: LayerConfig): LayerKvScales {
  const int8 = config.kvDtype === "int8";
  return {
    kScale: 0.0093,
    vScale: 0.0081,
    kZeroPoint: int8 ? 3 : 0,
    vZeroPoint: int8 ? -2 : 0,
  };
}

/** Values over several decades, with the specials every codec must keep. */
function values(n: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const specials = [NaN, Infinity, -Infinity, 0, -0, 1e-40, 600, -3.4e38];
  return Float32Array.from(
    { length: n },
    (_, i) => specials[i] ?? (rand() * 2 - 1) * 10 ** (rand() * 6 - 4),
  );
}

const bytes = (a: ArrayBufferView) => [
  ...new Uint8Array(a.buffer, a.byteOffset, a.byteLength),
];

/** What the encodeWrite harness needs from one WebGPU backend's tests. */
export interface EncodeWriteSubject {
  readonly capabilities: BackendCapabilities;
  create(): Promise<EncodeWriteBackend>;
  /** Raw codes (and per-token-head scales) of some slots of a cache. */
  readCodes(cache: LayerCache, slots: Int32Array): Promise<SlotCodes>;
  /** The backend's test-support helpers: test name, skip reason, layer. */
  readonly named: (name: string) => string;
  readonly skipReason: string | undefined;
  readonly layerOf: (overrides: Partial<LayerConfig>) => LayerConfig;
}

/** The members of a live WebGPU backend the harness drives. */
export type EncodeWriteBackend =
  & Pick<AttentionBackend, "createCache" | "write" | "dispose">
  & {
    readonly device: GPUDevice;
    encodeWrite(
      encoder: GPUCommandEncoder,
      cache: LayerCache,
      io: DeviceWriteIo,
    ): DeviceWork;
  };

/** Raw codes of some slots, as the backends' readCodes() return them. */
export interface SlotCodes {
  readonly keys: ArrayBufferView;
  readonly values: ArrayBufferView;
  readonly keyScales?: Float32Array;
  readonly valueScales?: Float32Array;
}

/**
 * Registers one Deno test per KV dtype variant: encodeWrite() against the
 * host write() and core's codecs, bit for bit (see the module doc).
 */
export function registerEncodeWriteTests(subject: EncodeWriteSubject): void {
  const { layerOf, named } = subject;
  for (const variant of VARIANTS) {
    const config = layerOf({
      ...variant,
      numQHeads: 4,
      numKvHeads: 2,
      headDim: 64,
    });
    const label = `${config.kvDtype}${
      config.int8Scheme ? ` ${config.int8Scheme}` : ""
    }`;
    const unsupported = unsupportedReasons(subject.capabilities, config);
    Deno.test({
      name: named(
        `encodeWrite() stores the codes write() stores, bit for bit (${label})`,
      ) + (unsupported.length ? ` (ignored: ${unsupported.join("; ")})` : ""),
      ignore: subject.skipReason !== undefined || unsupported.length > 0,
      async fn() {
        const b = await subject.create();
        const { device } = b;
        const options = { numBlocks: 4, scales: scalesOf(config) };
        const [host, onDevice] = await Promise.all([
          b.createCache(config, options),
          b.createCache(config, options),
        ]);
        const slots = Int32Array.of(5, -1, 17, 31, 0, 40);
        const row = config.numKvHeads * config.headDim;
        const keys = values(slots.length * row, 1);
        const vals = values(slots.length * row, 2);
        b.write(host, { keys, values: vals, slotMapping: slots });

        const at = device.limits.minStorageBufferOffsetAlignment;
        const upload = (data: Float32Array | Int32Array) => {
          const padded = new Uint8Array(at + data.byteLength);
          padded.set(new Uint8Array(data.buffer), at);
          return createBufferFrom(device, padded, GPUBufferUsage.STORAGE);
        };
        const io = {
          keys: upload(keys),
          keysOffset: at,
          values: upload(vals),
          valuesOffset: at,
          slotMapping: upload(slots),
          slotMappingOffset: at,
          numTokens: slots.length,
        };
        const encoder = device.createCommandEncoder();
        const work = b.encodeWrite(encoder, onDevice, io);
        device.queue.submit([encoder.finish()]);
        await device.queue.onSubmittedWorkDone();
        work.release();

        const kept = slots.filter((s) => s >= 0);
        const [want, got] = await Promise.all([
          subject.readCodes(host, kept),
          subject.readCodes(onDevice, kept),
        ]);
        assert.ok(bytes(want.keys).some((x) => x !== 0), "host codes are zero");
        assert.deepEqual(bytes(got.keys), bytes(want.keys), "K codes");
        assert.deepEqual(bytes(got.values), bytes(want.values), "V codes");
        const pick = (src: Float32Array) =>
          Float32Array.from(
            [...slots].flatMap((s, t) =>
              s < 0 ? [] : [...src.subarray(t * row, (t + 1) * row)]
            ),
          );
        const s = options.scales;
        for (
          const [name, src, codes, scale, zp] of [
            ["K", pick(keys), got.keys, s.kScale, s.kZeroPoint],
            ["V", pick(vals), got.values, s.vScale, s.vZeroPoint],
          ] as const
        ) {
          const codec = codecFor(config.kvDtype);
          let oracle = codec.allocate(src.length);
          if (config.int8Scheme === "per_token_head") {
            oracle = quantizeInt8PerTokenHead(src, kept.length, 2, 64).codes;
          } else codec.encodeArray(src, oracle, scale, zp);
          assert.deepEqual(
            bytes(codes),
            bytes(oracle),
            `${name} vs core codec`,
          );
        }
        if (want.keyScales) {
          assert.deepEqual(
            [...got.keyScales!],
            [...want.keyScales],
            "K scales",
          );
          assert.deepEqual([...got.valueScales!], [...want.valueScales!]);
        }
        const noStorage = createBufferFrom(
          device,
          keys,
          GPUBufferUsage.COPY_SRC,
        );
        assert.throws(
          () =>
            b.encodeWrite(device.createCommandEncoder(), onDevice, {
              ...io,
              keys: noStorage,
              keysOffset: 0,
            }),
          /io\.keys was created without GPUBufferUsage\.STORAGE/,
        );
        for (const buffer of [io.keys, io.values, io.slotMapping, noStorage]) {
          buffer.destroy();
        }
        b.dispose();
      },
    });
  }
}
