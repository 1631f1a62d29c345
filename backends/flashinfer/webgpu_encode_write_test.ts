// encodeWrite() against the host write() and core's codecs, bit for bit:
// the shared cases of webgpu/encode_write_cases.ts on this backend.
import { registerEncodeWriteTests } from "../../webgpu/encode_write_cases.ts";
import {
  createFlashinferWebGpuBackend,
  FLASHINFER_WEBGPU_CAPABILITIES,
} from "./webgpu_backend.ts";
import type { HndPagedCache } from "../../webgpu/hnd_cache_ops.ts";
import { readCodes } from "../../webgpu/hnd_readback.ts";
import { layerOf, named, SKIP_REASON } from "./webgpu_test_support.ts";

registerEncodeWriteTests({
  capabilities: FLASHINFER_WEBGPU_CAPABILITIES,
  create: createFlashinferWebGpuBackend,
  readCodes: (cache, slots) => readCodes(cache as HndPagedCache, slots),
  named,
  skipReason: SKIP_REASON,
  layerOf,
});
