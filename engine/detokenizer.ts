/**
 * Streaming detokenization. A token may end in the middle of a UTF-8
 * character (byte-level BPE splits "é" into two tokens), and a tokenizer may
 * render a token differently depending on the one before it (SentencePiece's
 * leading space), so each new token is decoded together with its context and
 * only text that is complete, and new, is emitted. This is vLLM's
 * detokenize_incrementally, with the same two offsets.
 *
 * @module
 */

/** What the detokenizer needs from a tokenizer. */
export interface Decoder {
  decode(ids: readonly number[]): string;
}

/** U+FFFD, what a decoder yields for a partial UTF-8 character. */
const REPLACEMENT = "\uFFFD";

/**
 * Turns a stream of token ids into a stream of text pieces that never split
 * a character.
 *
 * @example Usage
 * ```ts
 * import { IncrementalDetokenizer } from "./detokenizer.ts";
 * import assert from "node:assert/strict";
 *
 * // A byte-level decoder: ids are UTF-8 bytes.
 * const bytes = { decode: (ids: readonly number[]) => new TextDecoder().decode(Uint8Array.from(ids)) };
 * const stream = new IncrementalDetokenizer(bytes);
 * const pieces = [...new TextEncoder().encode("hé!")].map((b) => stream.push(b));
 * assert.deepEqual(pieces, ["h", "", "é", "!"]); // "é" waits for its second byte
 * ```
 */
export class IncrementalDetokenizer {
  #decoder: Decoder;
  #ids: number[];
  /** Start of the context decoded with each new token. */
  #prefixOffset = 0;
  /** End of the text already emitted. */
  #readOffset: number;

  /**
   * @param context The last few prompt ids, so that the first generated
   *   token is rendered as it would be mid-text (not emitted themselves).
   */
  constructor(decoder: Decoder, options: { context?: readonly number[] } = {}) {
    this.#decoder = decoder;
    this.#ids = [...(options.context ?? [])];
    this.#readOffset = this.#ids.length;
  }

  /** Adds one token; returns the newly completed text ("" while a character is incomplete). */
  push(id: number): string {
    this.#ids.push(id);
    const prefix = this.#decoder.decode(
      this.#ids.slice(this.#prefixOffset, this.#readOffset),
    );
    const text = this.#decoder.decode(this.#ids.slice(this.#prefixOffset));
    // A trailing U+FFFD is (usually) a character still missing bytes. A
    // genuine U+FFFD in the output is therefore held back until the next
    // token or flush().
    if (text.length <= prefix.length || text.endsWith(REPLACEMENT)) return "";
    this.#prefixOffset = this.#readOffset;
    this.#readOffset = this.#ids.length;
    return text.slice(prefix.length);
  }

  /** Ends the stream: returns whatever is held back, incomplete characters as U+FFFD. */
  flush(): string {
    const prefix = this.#decoder.decode(
      this.#ids.slice(this.#prefixOffset, this.#readOffset),
    );
    const text = this.#decoder.decode(this.#ids.slice(this.#prefixOffset));
    this.#prefixOffset = this.#readOffset = this.#ids.length;
    return text.length > prefix.length ? text.slice(prefix.length) : "";
  }
}
