import assert from "node:assert/strict";
import { StopChecker } from "./stop_checker.ts";

function run(stops: string[], steps: string[]) {
  const c = new StopChecker(stops);
  let out = "", stopped = false;
  for (const s of steps) {
    const r = c.push(s);
    out += r.delta;
    stopped ||= r.stopped;
  }
  return { out: stopped ? out : out + c.flush(steps.at(-1) ?? ""), stopped };
}

Deno.test("StopChecker finds a stop string split across steps and returns the text before it", () => {
  assert.deepEqual(run(["END"], ["ab", "abE", "abEN", "abEND", "abENDx"]), {
    out: "ab",
    stopped: true,
  });
});

Deno.test("StopChecker releases a held-back prefix when the stop string does not follow", () => {
  assert.deepEqual(run(["END"], ["ab", "abE", "abEx"]), {
    out: "abEx",
    stopped: false,
  });
});

Deno.test("StopChecker holds back a partial UTF-8 character until it completes", () => {
  const c = new StopChecker([]);
  assert.equal(c.push("h\uFFFD").delta, "h");
  assert.equal(c.push("hé").delta, "é");
  assert.equal(c.flush("hé!\uFFFD"), "!");
});

Deno.test("StopChecker picks the earliest of several stop strings", () => {
  assert.deepEqual(run(["zz", "b"], ["a", "ab", "abzz"]), {
    out: "a",
    stopped: true,
  });
});
