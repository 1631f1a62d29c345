/**
 * Immutable parameter builders, in the WebGPU CTS's shape:
 * `params().combine("headDim", [64, 128]).combine("kvDtype", dtypes)`. Each
 * combination becomes a case with an address that can be run alone.
 *
 * @module
 */

/** A case's parameters: plain values only, so the address is stable. */
export type ParamValue = string | number | boolean;

/** Builds the cartesian product of parameter lists, immutably. */
export class Params<T extends Record<string, ParamValue>> {
  readonly #rows: readonly T[];

  /** A builder over these rows; start with {@linkcode params} instead. */
  constructor(rows: readonly T[]) {
    this.#rows = rows;
  }

  /** Every existing row, once per value of `key`. */
  combine<K extends string, V extends ParamValue>(
    key: K,
    values: readonly V[],
  ): Params<T & Record<K, V>> {
    return new Params(
      this.#rows.flatMap((row) =>
        values.map((v) => ({ ...row, [key]: v }) as T & Record<K, V>)
      ),
    );
  }

  /** Rows that pass the predicate. */
  filter(keep: (row: T) => boolean): Params<T> {
    return new Params(this.#rows.filter(keep));
  }

  /** The rows. */
  get rows(): readonly T[] {
    return this.#rows;
  }
}

/**
 * Starts a builder with one empty row.
 *
 * @example Usage
 * ```ts
 * import { params } from "./params.ts";
 * import assert from "node:assert/strict";
 *
 * const rows = params().combine("a", [1, 2]).combine("b", ["x"]).rows;
 * assert.deepEqual(rows, [{ a: 1, b: "x" }, { a: 2, b: "x" }]);
 * ```
 */
export function params(): Params<Record<never, ParamValue>> {
  return new Params([{}]);
}

/**
 * A case's address: `group:key=value;key=value`, keys in the given order.
 *
 * @example Usage
 * ```ts
 * import { caseAddress } from "./params.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(caseAddress("attend", { headDim: 128, kvDtype: "fp8_e4m3" }), "attend:headDim=128;kvDtype=fp8_e4m3");
 * ```
 */
export function caseAddress(
  group: string,
  row: Readonly<Record<string, ParamValue>>,
): string {
  return `${group}:${
    Object.entries(row).map(([k, v]) => `${k}=${v}`).join(";")
  }`;
}

/**
 * Whether an address matches a filter: a substring, or a glob with `*`.
 *
 * @example Usage
 * ```ts
 * import { addressMatches } from "./params.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(addressMatches("attend:mode=decode;kvDtype=int8", "attend:*int8"));
 * assert.ok(addressMatches("write:kvDtype=fp16", "fp16"));
 * assert.ok(!addressMatches("write:kvDtype=fp16", "attend:*"));
 * ```
 */
export function addressMatches(address: string, filter: string): boolean {
  if (!filter.includes("*")) return address.includes(filter);
  const pattern = filter.split("*").map((s) =>
    s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")
  ).join(".*");
  return new RegExp(`^${pattern}$`).test(address);
}
