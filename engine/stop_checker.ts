/**
 * Turns the decoded output text, step by step, into deltas a client may see:
 * it holds back a trailing partial UTF-8 character (decoded as U+FFFD) and
 * any suffix that could still become a stop string, and ends the output just
 * before a stop string (which is never returned, as OpenAI's API does).
 *
 * @module
 */

/** Stop-string tracking for one request. */
export class StopChecker {
  readonly #stops: readonly string[];
  #sent = 0;
  #stopped = false;

  /** Tracks `stops`, the strings that end the output (empty for none). */
  constructor(stops: readonly string[]) {
    this.#stops = stops;
  }

  /**
   * Takes the whole output text so far; returns what is new and safe to send.
   *
   * @example Usage
   * ```ts
   * import { StopChecker } from "./stop_checker.ts";
   * import assert from "node:assert/strict";
   *
   * const c = new StopChecker(["\n\n"]);
   * assert.deepEqual(c.push("Hi"), { delta: "Hi", stopped: false });
   * assert.deepEqual(c.push("Hi\n"), { delta: "", stopped: false }); // maybe a stop
   * assert.deepEqual(c.push("Hi\n\nmore"), { delta: "", stopped: true });
   * ```
   */
  push(text: string): { delta: string; stopped: boolean } {
    if (this.#stopped) return { delta: "", stopped: true };
    let end = text.length;
    for (const stop of this.#stops) {
      const at = text.indexOf(stop, Math.max(0, this.#sent - stop.length + 1));
      if (at !== -1 && at < end) {
        end = at;
        this.#stopped = true;
      }
    }
    if (!this.#stopped) {
      // Hold back a partial character and a possible start of a stop string.
      while (end > this.#sent && text[end - 1] === "\uFFFD") end--;
      for (const stop of this.#stops) {
        for (let k = Math.min(stop.length - 1, end - this.#sent); k > 0; k--) {
          if (text.slice(end - k, end) === stop.slice(0, k)) {
            end -= k;
            break;
          }
        }
      }
    }
    const delta = text.slice(this.#sent, Math.max(this.#sent, end));
    this.#sent = Math.max(this.#sent, end);
    return { delta, stopped: this.#stopped };
  }

  /** At the end (length or EOS): whatever was held back, except a partial character. */
  flush(text: string): string {
    if (this.#stopped) return "";
    let end = text.length;
    while (end > this.#sent && text[end - 1] === "\uFFFD") end--;
    const delta = text.slice(this.#sent, end);
    this.#sent = end;
    return delta;
  }
}
