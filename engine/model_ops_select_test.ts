// Choosing the ops target: a named target is honoured or refused with the
// fix, never silently replaced; the default says why it was chosen.
import assert from "node:assert/strict";
import { probeNativeAddon } from "../native/mod.ts";
import type { OpsTarget } from "./model_ops.ts";
import { nativeOpsUnavailable } from "./model_ops_native.ts";
import { selectModelOps } from "./model_ops_select.ts";

const probe = probeNativeAddon();
const nativeWhy = probe.available
  ? nativeOpsUnavailable(probe.addon)
  : probe.reason;

Deno.test("selectModelOps() honours typescript and refuses an unknown target, listing the valid ones", () => {
  const ts = selectModelOps("typescript");
  assert.equal(ts.ops.target, "typescript");
  assert.equal(ts.reason, "typescript: requested");
  assert.throws(
    () => selectModelOps("wasm" as OpsTarget),
    /Unknown ops target "wasm": pass one of typescript, native/,
  );
});

Deno.test("selectModelOps() defaults to native when the addon can run it, else typescript with the reason", () => {
  const auto = selectModelOps();
  if (nativeWhy === undefined) {
    assert.equal(auto.ops.target, "native");
    assert.match(
      auto.reason,
      /^native: the addon is available \(native matmul on /,
    );
    assert.equal(selectModelOps("native").ops.target, "native");
  } else {
    assert.equal(auto.ops.target, "typescript");
    assert.equal(auto.reason, `typescript: ${nativeWhy}`);
    assert.throws(
      () => selectModelOps("native"),
      /The native ops target is unavailable: .*deno task build:native/,
    );
  }
});
