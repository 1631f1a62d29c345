// The watchdog's own thread (see watchdog.ts). The main thread tells it when
// each case starts and ends, and writes the phase in progress into shared
// memory; if a case is still running past its deadline plus a grace period,
// the main thread's own timeout could not fire (its event loop is blocked by
// a synchronous loop), so this thread reports the case and ends the process.

/// <reference lib="deno.worker" />

interface Start {
  readonly kind: "start";
  readonly seq: number;
  readonly target: string;
  readonly address: string;
  readonly timeoutMs: number;
  readonly reproduce: string;
  readonly phases: readonly string[];
  readonly shared: SharedArrayBuffer;
}
interface End {
  readonly kind: "end";
}

let timer: ReturnType<typeof setTimeout> | undefined;

function stopProcess(): never {
  // Deno.exit() in a worker ends only the worker: end the process itself,
  // with status 1 where FFI is allowed, else by signal (status 143).
  try {
    const lib = Deno.build.os === "darwin" ? "libSystem.B.dylib" : "libc.so.6";
    const libc = Deno.dlopen(lib, {
      _exit: { parameters: ["i32"], result: "void" },
    });
    libc.symbols._exit(1);
  } catch {
    // No FFI permission or no such library.
  }
  Deno.kill(Deno.pid, "SIGTERM");
  throw new Error("unreachable");
}

self.onmessage = (event: MessageEvent<Start | End>) => {
  clearTimeout(timer);
  timer = undefined;
  const m = event.data;
  if (m.kind !== "start" || !(m.timeoutMs > 0 && m.timeoutMs < Infinity)) {
    return;
  }
  const view = new Int32Array(m.shared);
  const grace = Math.max(2000, m.timeoutMs / 10);
  timer = setTimeout(() => {
    if (Atomics.load(view, 0) !== m.seq) return;
    const phase = m.phases[Atomics.load(view, 1)] ?? "case";
    const text =
      `FAIL  ${m.target} ${m.address} (timed out in phase ${phase})\n` +
      `  ${m.address} timed out after ${
        m.timeoutMs / 1000
      } s in phase ${phase}, and the run stops here: ${
        phase === "case" ? "the suite's code" : `${phase}()`
      } blocked the event loop (a synchronous loop that never returns), so no other case can run and no summary can be printed\n` +
      `  reproduce: ${m.reproduce}\n`;
    Deno.stderr.writeSync(new TextEncoder().encode(text));
    stopProcess();
  }, m.timeoutMs + grace);
};
