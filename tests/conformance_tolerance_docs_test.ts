// docs/CONFORMANCE.md prints the tolerance table; TOLERANCES is the table the
// cases use. They must say the same, row for row.
import assert from "node:assert/strict";
import { TOLERANCES } from "../conformance/tolerances.ts";

/** "1e-4", "0.25" or "4/254" as a number. */
function parseBound(text: string): number {
  const [num, den] = text.split("/");
  const value = Number(num) / (den === undefined ? 1 : Number(den));
  assert.ok(Number.isFinite(value), `"${text}" is not a bound`);
  return value;
}

Deno.test("docs/CONFORMANCE.md's tolerance table equals TOLERANCES", async () => {
  const doc = await Deno.readTextFile(
    new URL("../docs/CONFORMANCE.md", import.meta.url),
  );
  const section = doc.slice(doc.indexOf("## Tolerances"));
  const rows = section.split("\n").filter((l) => l.startsWith("| "))
    .map((l) => l.split("|").slice(1, -1).map((c) => c.trim()))
    .filter((cells) => cells[0] in TOLERANCES);
  assert.deepEqual(
    rows.map((r) => r[0]).sort(),
    Object.keys(TOLERANCES).sort(),
    "one row per cache dtype",
  );
  for (const [dtype, write, kernel, quantized] of rows) {
    const t = TOLERANCES[dtype as keyof typeof TOLERANCES];
    assert.equal(write, "exact", dtype);
    assert.equal(t.kernel.atol, t.kernel.rtol, `${dtype}: atol = rtol`);
    assert.equal(parseBound(kernel), t.kernel.atol, `${dtype} kernel`);
    assert.equal(parseBound(quantized), t.quantized, `${dtype} quantized`);
  }
});
