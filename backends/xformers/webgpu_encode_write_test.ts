// encodeWrite() against the host write() and core's codecs, bit for bit:
// the shared cases of webgpu/encode_write_cases.ts on this backend.
import { registerEncodeWriteTests } from "../../webgpu/encode_write_cases.ts";
import {
  createXformersWebGpuBackend,
  XFORMERS_WEBGPU_CAPABILITIES,
} from "./webgpu_backend.ts";
import type { WebGpuCache } from "./webgpu_cache.ts";
import { readCodes } from "./webgpu_readback.ts";
import { layerOf, named, SKIP_REASON } from "./webgpu_test_support.ts";

registerEncodeWriteTests({
  capabilities: XFORMERS_WEBGPU_CAPABILITIES,
  create: createXformersWebGpuBackend,
  readCodes: (cache, slots) => readCodes(cache as WebGpuCache, slots),
  named,
  skipReason: SKIP_REASON,
  layerOf,
});
