/**
 * A tiny SVG writer for benchmark plots: elements as strings, XML escaping,
 * a colour palette and "nice" axis ticks. No dependencies.
 *
 * @module
 */

/** Attribute values; undefined ones are left out. */
export type Attrs = Record<string, string | number | undefined>;

/** Colours for series, in order (Okabe-Ito, readable by colour-blind eyes). */
export const PALETTE = [
  "#0072B2",
  "#E69F00",
  "#009E73",
  "#D55E00",
  "#CC79A7",
  "#56B4E9",
  "#F0E442",
  "#000000",
] as const;

/**
 * Escapes text for XML content and attribute values.
 *
 * @example Usage
 * ```ts
 * import { escapeXml } from "./svg.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(escapeXml(`a<b & "c"`), "a&lt;b &amp; &quot;c&quot;");
 * ```
 */
export function escapeXml(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (c) =>
      ({
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
        '"': "&quot;",
        "'": "&apos;",
      })[
        c
      ]!,
  );
}

/**
 * One element. `children` is raw markup (already escaped); use
 * {@linkcode text} for text content.
 *
 * @example Usage
 * ```ts
 * import { el } from "./svg.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(el("rect", { x: 1, y: undefined }), `<rect x="1"/>`);
 * assert.equal(el("g", {}, ["<a/>"]), "<g><a/></g>");
 * ```
 */
export function el(
  tag: string,
  attrs: Attrs,
  children?: readonly string[],
): string {
  const a = Object.entries(attrs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) =>
      ` ${k}="${escapeXml(typeof v === "number" ? round(v) : v!)}"`
    )
    .join("");
  return children === undefined
    ? `<${tag}${a}/>`
    : `<${tag}${a}>${children.join("")}</${tag}>`;
}

/** A text element with escaped content. */
export function text(content: string, attrs: Attrs): string {
  return el("text", attrs, [escapeXml(content)]);
}

/** A whole SVG document with a white background. */
export function svgDocument(
  width: number,
  height: number,
  children: readonly string[],
): string {
  return el("svg", {
    xmlns: "http://www.w3.org/2000/svg",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    "font-family": "sans-serif",
    "font-size": 12,
  }, [el("rect", { width, height, fill: "white" }), ...children]) + "\n";
}

/**
 * Round axis ticks from 0 to at least `max`, about `count` of them.
 *
 * @example Usage
 * ```ts
 * import { niceTicks } from "./svg.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(niceTicks(9.3, 5), [0, 2, 4, 6, 8, 10]);
 * assert.deepEqual(niceTicks(0, 5), [0, 1]);
 * ```
 */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks = [0];
  while (ticks.at(-1)! < max - step * 1e-9) {
    ticks.push(Number((ticks.length * step).toPrecision(12)));
  }
  return ticks;
}

function round(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}
