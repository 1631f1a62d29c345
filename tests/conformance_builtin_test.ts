// The conformance suite against every built-in backend, on every target
// present on this machine (absent targets show as ignored, with the reason).
// The reference backend also runs the long tier (32k-token retrieval and a
// cache past 2^31 elements), so CI exercises those cases on one backend.
import { builtinRegistry } from "../backends/builtin.ts";
import { registerConformanceTests } from "../conformance/register.ts";

for (const definition of await builtinRegistry().loadAll()) {
  await registerConformanceTests(definition, {
    long: definition.name === "reference",
  });
}
