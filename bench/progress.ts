/**
 * A one-line progress report for long benchmark runs: redrawn in place with
 * `\r` on a terminal, and degraded to an occasional plain line when stdout
 * is a file or a pipe (so logs stay readable).
 *
 * @module
 */

/** Where a run stands. */
export interface ProgressState {
  /** Requests finished. */
  readonly done: number;
  /** Output tokens so far. */
  readonly tokens: number;
  /** Seconds since the run started. */
  readonly elapsedS: number;
}

/** Options for {@linkcode ProgressLine}. */
export interface ProgressOptions {
  /** Redraw in place. @default Deno.stdout.isTerminal() */
  readonly tty?: boolean;
  /** Writes raw text. @default writes to stdout */
  readonly write?: (text: string) => void;
  /** Seconds between plain lines when not a terminal. @default 15 */
  readonly plainEveryS?: number;
}

const encoder = new TextEncoder();
const BAR_WIDTH = 24;

/**
 * A progress line for `total` requests.
 *
 * @example Plain lines when stdout is not a terminal
 * ```ts
 * import { ProgressLine } from "./progress.ts";
 * import assert from "node:assert/strict";
 *
 * const out: string[] = [];
 * const p = new ProgressLine("bf16", 4, { tty: false, write: (t) => out.push(t) });
 * p.update({ done: 1, tokens: 10, elapsedS: 1 }); // too soon: nothing
 * p.update({ done: 4, tokens: 40, elapsedS: 2 }); // the end always prints
 * p.finish();
 * assert.deepEqual(out, ["  bf16: 4/4 requests, 40 tokens, 20.0 tok/s, 2.0 s\n"]);
 * ```
 */
export class ProgressLine {
  readonly #label: string;
  readonly #total: number;
  readonly #tty: boolean;
  readonly #write: (text: string) => void;
  readonly #plainEveryS: number;
  #lastS = 0;
  #lastDone = -1;
  #drawn = false;

  constructor(label: string, total: number, options: ProgressOptions = {}) {
    this.#label = label;
    this.#total = total;
    this.#tty = options.tty ?? Deno.stdout.isTerminal();
    this.#write = options.write ??
      ((t) => Deno.stdout.writeSync(encoder.encode(t)));
    this.#plainEveryS = options.plainEveryS ?? 15;
  }

  /** Reports progress; throttled (10 redraws a second, or a line every 15 s). */
  update(s: ProgressState): void {
    const end = s.done === this.#total && s.done !== this.#lastDone;
    const every = this.#tty ? 0.1 : this.#plainEveryS;
    if (!end && s.elapsedS - this.#lastS < every) return;
    this.#lastS = s.elapsedS;
    this.#lastDone = s.done;
    const rate = s.elapsedS > 0 ? s.tokens / s.elapsedS : 0;
    const text =
      `${this.#label}: ${s.done}/${this.#total} requests, ${s.tokens} tokens, ${
        rate.toFixed(1)
      } tok/s, ${s.elapsedS.toFixed(1)} s`;
    if (this.#tty) {
      const filled = Math.round(BAR_WIDTH * s.done / Math.max(1, this.#total));
      const bar = "#".repeat(filled) + ".".repeat(BAR_WIDTH - filled);
      this.#write(`\r\x1b[2K  [${bar}] ${text}`);
      this.#drawn = true;
    } else {
      this.#write(`  ${text}\n`);
    }
  }

  /** Ends the line on a terminal so that the next output starts clean. */
  finish(): void {
    if (this.#tty && this.#drawn) this.#write("\n");
    this.#drawn = false;
  }
}
