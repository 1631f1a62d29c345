/**
 * The two plots the serving benchmark draws, as the seed's figure has them:
 * a bar per configuration (throughput) and a line per configuration over
 * iterations (effective batch size). Plain SVG from ./svg.ts.
 *
 * @module
 */

import { el, niceTicks, PALETTE, svgDocument, text } from "./svg.ts";

const W = 720, H = 400;
const M = { left: 64, right: 16, top: 40, bottom: 56 };
const PLOT_W = W - M.left - M.right, PLOT_H = H - M.top - M.bottom;
// Dashes tell apart lines that coincide (two dtypes with the same batch).
const DASHES = [undefined, "7 4", "2 3", "10 3 2 3", "4 4"];

/** One bar. */
export interface Bar {
  readonly label: string;
  readonly value: number;
  /** Printed above the bar, e.g. "1.05x". @default the value */
  readonly note?: string;
}

/** A named series of y values at x = 1, 2, 3, ... */
export interface Series {
  readonly name: string;
  readonly values: readonly number[];
}

/** Title and axis labels. */
export interface ChartText {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
}

/**
 * A bar chart, one colour per bar.
 *
 * @example Usage
 * ```ts
 * import { barChart } from "./charts.ts";
 * import assert from "node:assert/strict";
 *
 * const svg = barChart([{ label: "bf16", value: 3 }], { title: "t", xLabel: "x", yLabel: "y" });
 * assert.match(svg, /^<svg [^>]*>.*<\/svg>\n$/s);
 * ```
 */
export function barChart(bars: readonly Bar[], t: ChartText): string {
  const ticks = niceTicks(Math.max(0, ...bars.map((b) => b.value)));
  const top = ticks.at(-1)!;
  const y = (v: number) => M.top + PLOT_H * (1 - v / top);
  const slot = PLOT_W / Math.max(1, bars.length);
  const parts = bars.flatMap((b, i) => {
    const x = M.left + slot * i + slot * 0.15;
    const h = Math.max(0, y(0) - y(b.value));
    return [
      el("rect", {
        x,
        y: y(0) - h,
        width: slot * 0.7,
        height: h,
        fill: PALETTE[i % PALETTE.length],
      }),
      text(b.note ?? b.value.toFixed(1), {
        x: x + slot * 0.35,
        y: y(0) - h - 4,
        "text-anchor": "middle",
      }),
      text(b.label, {
        x: x + slot * 0.35,
        y: y(0) + 16,
        "text-anchor": "middle",
      }),
    ];
  });
  return svgDocument(W, H, [...frame(ticks, t, false), ...parts]);
}

/**
 * A line chart with a legend; series may differ in length.
 *
 * @example Usage
 * ```ts
 * import { lineChart } from "./charts.ts";
 * import assert from "node:assert/strict";
 *
 * const svg = lineChart([{ name: "bf16", values: [1, 4, 4, 2] }], { title: "t", xLabel: "x", yLabel: "y" });
 * assert.match(svg, /<polyline /);
 * ```
 */
export function lineChart(series: readonly Series[], t: ChartText): string {
  const ticks = niceTicks(Math.max(0, ...series.flatMap((s) => s.values)));
  const top = ticks.at(-1)!;
  const xTicks = niceTicks(Math.max(1, ...series.map((s) => s.values.length)));
  const xMax = xTicks.at(-1)!;
  const px = (i: number) => M.left + PLOT_W * (i / xMax);
  const py = (v: number) => M.top + PLOT_H * (1 - v / top);
  const parts = series.flatMap((s, k) => {
    const colour = PALETTE[k % PALETTE.length];
    const points = s.values.map((v, i) =>
      `${px(i + 1).toFixed(1)},${py(v).toFixed(1)}`
    );
    const ly = M.top + 14 + 16 * k;
    const dash = DASHES[k % DASHES.length];
    return [
      el("polyline", {
        points: points.join(" "),
        fill: "none",
        stroke: colour,
        "stroke-width": 1.5,
        "stroke-dasharray": dash,
      }),
      el("line", {
        x1: W - 160,
        x2: W - 130,
        y1: ly - 4,
        y2: ly - 4,
        stroke: colour,
        "stroke-width": 3,
        "stroke-dasharray": dash,
      }),
      text(s.name, { x: W - 124, y: ly }),
    ];
  });
  const xAxis = xTicks.map((v) =>
    text(String(v), {
      x: px(v),
      y: M.top + PLOT_H + 16,
      "text-anchor": "middle",
    })
  );
  return svgDocument(W, H, [...frame(ticks, t, true), ...xAxis, ...parts]);
}

/** Title, axis labels, y grid lines with their values, and the axes. */
function frame(ticks: number[], t: ChartText, xTicks: boolean): string[] {
  const top = ticks.at(-1)!;
  const y = (v: number) => M.top + PLOT_H * (1 - v / top);
  const grid = ticks.flatMap((v) => [
    el("line", {
      x1: M.left,
      x2: M.left + PLOT_W,
      y1: y(v),
      y2: y(v),
      stroke: "#ddd",
    }),
    text(String(v), { x: M.left - 6, y: y(v) + 4, "text-anchor": "end" }),
  ]);
  return [
    text(t.title, {
      x: W / 2,
      y: 22,
      "text-anchor": "middle",
      "font-size": 15,
    }),
    ...grid,
    el("line", {
      x1: M.left,
      x2: M.left,
      y1: M.top,
      y2: M.top + PLOT_H,
      stroke: "black",
    }),
    el("line", {
      x1: M.left,
      x2: M.left + PLOT_W,
      y1: M.top + PLOT_H,
      y2: M.top + PLOT_H,
      stroke: "black",
    }),
    text(t.xLabel, {
      x: M.left + PLOT_W / 2,
      y: H - (xTicks ? 12 : 8),
      "text-anchor": "middle",
    }),
    text(t.yLabel, {
      x: 16,
      y: M.top + PLOT_H / 2,
      "text-anchor": "middle",
      transform: `rotate(-90 16 ${M.top + PLOT_H / 2})`,
    }),
  ];
}
