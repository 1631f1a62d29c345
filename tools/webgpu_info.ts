/**
 * `deno run -A tools/webgpu_info.ts`: the WebGPU adapter Deno finds here,
 * with its features and limits, as JSON (for checking a GPU machine before
 * running the WebGPU backends on it).
 *
 * @module
 */

if (import.meta.main) {
  const adapter = await navigator.gpu?.requestAdapter({
    powerPreference: "high-performance",
  });
  if (!adapter) {
    console.error(
      "No WebGPU adapter found: install a Vulkan driver (mesa-vulkan-drivers for lavapipe)",
    );
    Deno.exit(1);
  }
  const limits: Record<string, number> = {};
  for (const key in adapter.limits) {
    limits[key] = (adapter.limits as unknown as Record<string, number>)[key];
  }
  console.log(JSON.stringify(
    {
      info: {
        vendor: adapter.info.vendor,
        architecture: adapter.info.architecture,
        device: adapter.info.device,
        description: adapter.info.description,
        isFallbackAdapter: adapter.info.isFallbackAdapter,
      },
      features: [...adapter.features].sort(),
      limits,
    },
    null,
    2,
  ));
}
