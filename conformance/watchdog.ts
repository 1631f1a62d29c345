/**
 * A watchdog for the command line: a case that blocks the event loop (a
 * synchronous infinite loop in a backend) cannot be timed out by the
 * runner's own timer, so a worker thread, told of each case and of the
 * phase in progress (through shared memory, without a message per call),
 * reports the case and its phase and ends the process when the deadline
 * passes by a grace period (the larger of 2 s and a tenth of the limit).
 * It ends the whole process: use it from a command, not inside a library.
 *
 * @module
 */

import { PHASES } from "./case.ts";
import type { CaseObserver } from "./runner.ts";

// The worker reads the phase as an index into PHASES.
const CASE = PHASES.indexOf("case");

/** A {@linkcode CaseObserver} backed by a worker; `stop()` ends the worker. */
export interface Watchdog extends CaseObserver {
  stop(): void;
}

/**
 * Starts the watchdog thread.
 *
 * @example Usage
 * ```ts
 * import { startWatchdog } from "./watchdog.ts";
 *
 * const watchdog = startWatchdog();
 * watchdog.start({ target: "reference", address: "contract:x", timeoutMs: 60_000, reproduce: "" });
 * watchdog.phase("attend");
 * watchdog.end();
 * watchdog.stop();
 * ```
 */
export function startWatchdog(): Watchdog {
  const worker = new Worker(
    new URL("./watchdog_worker.ts", import.meta.url),
    { type: "module" },
  );
  const shared = new SharedArrayBuffer(8);
  const view = new Int32Array(shared);
  let seq = 0;
  return {
    start(info) {
      seq++;
      Atomics.store(view, 0, seq);
      Atomics.store(view, 1, CASE);
      worker.postMessage({
        kind: "start",
        seq,
        ...info,
        phases: PHASES,
        shared,
      });
    },
    phase(phase) {
      const i = PHASES.indexOf(phase);
      Atomics.store(view, 1, i < 0 ? CASE : i);
    },
    end() {
      Atomics.store(view, 0, 0);
      worker.postMessage({ kind: "end" });
    },
    stop() {
      worker.terminate();
    },
  };
}
