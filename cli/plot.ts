/**
 * Training-curve plots: the per-epoch metrics of a run drawn as SVG and as PNG.
 *
 * Both formats come from one scene (a list of shapes and labels in a 1000×450 coordinate space),
 * so they show the same layout: on the left the training loss per epoch, on the right train and
 * test error in percent with the best test error ringed and named in the legend. A panel switches
 * to a logarithmic y axis when its positive values span a decade or more (the axis title then says
 * "log scale"); values at or below zero on such an axis are drawn on its floor and the axis title
 * says so. NaN and infinite values are left out, breaking a curve where they occur.
 *
 * The PNG is rasterised here into an RGBA buffer — anti-aliased strokes and discs, text from the
 * built-in {@link ./bitmap_font.ts} — and encoded with imagescript's pure-JS PNG encoder, loaded
 * without imagescript's main entry (which needs `--allow-ffi`). Output is a pure function of the
 * input: the same metrics give the same bytes.
 *
 * @module
 */

import { writeFileAtomic } from "../util/atomic.ts";
import { CAP_HEIGHT, forEachTextPixel, hasGlyph, textWidth } from "./bitmap_font.ts";

/** What a training run reports after each epoch. */
export interface EpochMetrics {
  /** Epoch number (usually from 1). */
  epoch: number;
  /** Mean training loss over the epoch. */
  trainLoss: number;
  /** Training error as a fraction in [0, 1]. */
  trainError: number;
  /** Test error as a fraction in [0, 1]. */
  testError: number;
  /** Learning rate used in the epoch. */
  lr?: number;
  /** Wall-clock seconds the epoch took. */
  seconds?: number;
}

/** Options of {@linkcode plotSvg}. */
export interface PlotOptions {
  /** Heading of the figure, e.g. `"mlp on mnist"` (default `"training"`). */
  title?: string;
}

/** Options of {@linkcode plotPng} and {@linkcode plotRgba}. */
export interface PngPlotOptions extends PlotOptions {
  /** Pixels per layout unit (default 1, giving {@linkcode PLOT_WIDTH}×{@linkcode PLOT_HEIGHT}). */
  scale?: number;
}

/** An RGBA raster image, row-major, 4 bytes a pixel, top row first. */
export interface RgbaImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `width * height * 4` bytes: red, green, blue, alpha. */
  data: Uint8Array;
}

/** Width of the plot in layout units (pixels at scale 1). */
export const PLOT_WIDTH = 1000;

/** Height of the plot in layout units (pixels at scale 1). */
export const PLOT_HEIGHT = 450;

/** Colours of the curves and the best-test marker, as `#rrggbb`. */
export const PLOT_COLORS: Readonly<{ train: string; test: string; best: string }> = {
  train: "#1f77b4",
  test: "#ff7f0e",
  best: "#d62728",
};

/** Scales {@linkcode plotPng} accepts: small enough to stay well under 100 megapixels. */
export const MAX_PLOT_SCALE = 8;

/**
 * The plot as a self-contained SVG document.
 *
 * Every curve is one `<path>` carrying a `data-series` attribute (`train-loss`, `train-error`,
 * `test-error`) with one `M`/`L` command per drawn point.
 *
 * @param metrics One entry per finished epoch; may be empty.
 * @param options Title.
 */
export function plotSvg(metrics: readonly EpochMetrics[], options: PlotOptions = {}): string {
  return sceneToSvg(buildScene(metrics, options.title));
}

/**
 * The plot rasterised into an RGBA buffer (what {@linkcode plotPng} encodes).
 *
 * @param metrics One entry per finished epoch; may be empty.
 * @param options Title and scale.
 * @throws {RangeError} When `scale` is not a number in (0, {@linkcode MAX_PLOT_SCALE}].
 */
export function plotRgba(
  metrics: readonly EpochMetrics[],
  options: PngPlotOptions = {},
): RgbaImage {
  const scale = options.scale ?? 1;
  if (!(typeof scale === "number" && scale > 0 && scale <= MAX_PLOT_SCALE)) {
    throw new RangeError(`plot.ts: scale must be in (0, ${MAX_PLOT_SCALE}], got ${scale}`);
  }
  return rasterize(buildScene(metrics, options.title), scale);
}

/**
 * The plot as PNG file bytes (8-bit RGBA).
 *
 * @param metrics One entry per finished epoch; may be empty.
 * @param options Title and scale.
 * @throws {RangeError} When `scale` is not a number in (0, {@linkcode MAX_PLOT_SCALE}].
 */
export async function plotPng(
  metrics: readonly EpochMetrics[],
  options: PngPlotOptions = {},
): Promise<Uint8Array> {
  const image = plotRgba(metrics, options);
  const encoder = await pngEncoder();
  return encoder.encode(image.data, {
    width: image.width,
    height: image.height,
    channels: 4,
    depth: 8,
    level: 6,
  });
}

/**
 * Writes `<basePath>.svg` and `<basePath>.png` atomically, so a viewer open on them never sees a
 * half-written file.
 *
 * @param basePath Path without extension, e.g. `runs/mlp/curves`; its folder must exist.
 * @param metrics One entry per finished epoch.
 * @param options Title and PNG scale.
 * @returns The two paths written.
 */
export async function writePlotFiles(
  basePath: string,
  metrics: readonly EpochMetrics[],
  options: PngPlotOptions = {},
): Promise<{ svg: string; png: string }> {
  const svg = `${basePath}.svg`, png = `${basePath}.png`;
  const pngBytes = await plotPng(metrics, options);
  await writeFileAtomic(svg, plotSvg(metrics, options));
  await writeFileAtomic(png, pngBytes);
  return { svg, png };
}

// ---------------------------------------------------------------------------------------------
// Scene: the layout shared by both outputs, in layout units.

interface TextItem {
  kind: "text";
  x: number;
  /** Baseline. */
  y: number;
  text: string;
  /** Cap height in layout units; a multiple of the font's 7 rows keeps the PNG crisp. */
  size: number;
  color: string;
  anchor: "start" | "middle" | "end";
  /** Rotated 90° counter-clockwise (reads bottom to top); `x` is then the baseline. */
  vertical?: boolean;
  bold?: boolean;
}

interface LineItem {
  kind: "line";
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  color: string;
  width: number;
  dash?: readonly [number, number];
}

interface PathItem {
  kind: "path";
  /** Unbroken runs of points. */
  runs: [number, number][][];
  color: string;
  width: number;
  series: string;
}

interface CircleItem {
  kind: "circle";
  cx: number;
  cy: number;
  r: number;
  fill: string | null;
  stroke: string | null;
  strokeWidth: number;
}

interface RectItem {
  kind: "rect";
  x: number;
  y: number;
  w: number;
  h: number;
  fill: string | null;
  fillOpacity: number;
  stroke: string | null;
  strokeWidth: number;
}

type Item = TextItem | LineItem | PathItem | CircleItem | RectItem;

interface Scene {
  title: string;
  items: Item[];
}

const FONT_TITLE = 14;
const FONT_SUBTITLE = 7;
const FONT_LABEL = 14;
const FONT_TICK = 14;
const FONT_LEGEND = 14;
const INK = "#222222";
const MUTED = "#666666";
const GRID = "#e4e4e4";
const GRID_MINOR = "#f3f3f3";
const FRAME = "#555555";
const LINE_WIDTH = 2;
const MARKER_RADIUS = 4;
/** Beyond this many points in a panel, only isolated points get a marker. */
const MAX_MARKED_POINTS = 25;
const PLOT_TOP = 84;
const PLOT_BOTTOM = 372;
/** Gap between the frame and the outermost data, so markers at the ends are not cut. */
const INSET = 10;

interface Point {
  epoch: number;
  value: number;
}

interface Series {
  id: string;
  label: string;
  color: string;
  /** One value per plotted epoch; not finite where the curve has a gap. */
  values: number[];
}

function numberOr(value: unknown): number {
  return typeof value === "number" ? value : NaN;
}

function buildScene(metrics: readonly EpochMetrics[], title: string | undefined): Scene {
  if (!Array.isArray(metrics)) {
    throw new TypeError(`plot.ts: metrics must be an array, got ${typeof metrics}`);
  }
  const rows = metrics
    .filter((m) => m !== null && typeof m === "object" && Number.isFinite(numberOr(m.epoch)))
    .map((m, index) => ({ m, index }))
    // Sorted so a resumed run's out-of-order entries still draw left to right; the index keeps
    // equal epochs in input order.
    .sort((a, b) => a.m.epoch - b.m.epoch || a.index - b.index)
    .map(({ m }) => m);

  const series = (id: string, label: string, color: string, pick: (m: EpochMetrics) => number) => ({
    id,
    label,
    color,
    values: rows.map(pick),
  });
  const loss = series("train-loss", "train loss", PLOT_COLORS.train, (m) => numberOr(m.trainLoss));
  const trainErr = series(
    "train-error",
    "train",
    PLOT_COLORS.train,
    (m) => numberOr(m.trainError) * 100,
  );
  const testErr = series(
    "test-error",
    "test",
    PLOT_COLORS.test,
    (m) => numberOr(m.testError) * 100,
  );

  let best: Point | null = null;
  for (let i = 0; i < rows.length; i++) {
    const value = testErr.values[i];
    if (Number.isFinite(value) && (best === null || value < best.value)) {
      best = { epoch: rows[i].epoch, value };
    }
  }

  const heading = cleanText(title ?? "training") || "training";
  const items: Item[] = [];
  items.push({
    kind: "rect",
    x: 0,
    y: 0,
    w: PLOT_WIDTH,
    h: PLOT_HEIGHT,
    fill: "#ffffff",
    fillOpacity: 1,
    stroke: null,
    strokeWidth: 0,
  });
  items.push({
    kind: "text",
    x: PLOT_WIDTH / 2,
    y: 26,
    text: fitText(heading, FONT_TITLE, PLOT_WIDTH - 40),
    size: FONT_TITLE,
    color: INK,
    anchor: "middle",
    bold: true,
  });
  items.push({
    kind: "text",
    x: PLOT_WIDTH / 2,
    y: 43,
    text: fitText(summary(rows, best), FONT_SUBTITLE, PLOT_WIDTH - 40),
    size: FONT_SUBTITLE,
    color: MUTED,
    anchor: "middle",
  });

  const epochs = rows.map((m) => m.epoch);
  const empty = rows.length === 0;
  panel(items, {
    left: 0,
    right: PLOT_WIDTH / 2,
    series: [loss],
    yTitle: "training loss",
    percent: false,
    epochs,
    message: empty ? "no data yet" : "no finite loss values",
    best: null,
  });
  panel(items, {
    left: PLOT_WIDTH / 2,
    right: PLOT_WIDTH,
    series: [trainErr, testErr],
    yTitle: "error",
    percent: true,
    epochs,
    message: empty ? "no data yet" : "no finite error values",
    best,
  });
  return { title: heading, items };
}

/** One line about the latest epoch (and the best one), under the title. */
function summary(rows: readonly EpochMetrics[], best: Point | null): string {
  if (rows.length === 0) return "no data yet";
  const last = rows[rows.length - 1];
  const parts = [`epoch ${formatNumber(last.epoch)}`];
  const loss = numberOr(last.trainLoss);
  if (Number.isFinite(loss)) parts.push(`loss ${formatNumber(Number(loss.toPrecision(4)))}`);
  const train = numberOr(last.trainError), test = numberOr(last.testError);
  if (Number.isFinite(train)) parts.push(`train error ${formatPercent(train * 100)}`);
  if (Number.isFinite(test)) parts.push(`test error ${formatPercent(test * 100)}`);
  if (best) {
    parts.push(`best test ${formatPercent(best.value)} at epoch ${formatNumber(best.epoch)}`);
  }
  const lr = numberOr(last.lr);
  if (Number.isFinite(lr)) parts.push(`lr ${formatNumber(Number(lr.toPrecision(3)))}`);
  let seconds = 0;
  for (const m of rows) {
    const s = numberOr(m.seconds);
    if (Number.isFinite(s) && s > 0) seconds += s;
  }
  if (seconds > 0) parts.push(`time ${formatDuration(seconds)}`);
  return parts.join("  ·  ");
}

interface PanelSpec {
  left: number;
  right: number;
  series: Series[];
  yTitle: string;
  percent: boolean;
  epochs: number[];
  message: string;
  best: Point | null;
}

function panel(items: Item[], spec: PanelSpec): void {
  const values = spec.series.flatMap((s) => s.values.filter(Number.isFinite));
  const axis = yAxis(values, spec.percent);
  const tickText = (v: number) => formatNumber(v) + (spec.percent ? "%" : "");
  const tickWidth = Math.max(
    0,
    ...axis.ticks.filter((t) => t.label).map((t) => measure(tickText(t.value), FONT_TICK)),
  );
  const titleX = spec.left + 14 + FONT_LABEL;
  const plotLeft = Math.round(titleX + 12 + tickWidth + 8);
  const plotRight = spec.right - 24;
  // The legend row starts above the axis title, where it has room for three entries.
  const legendLeft = titleX - FONT_LABEL;
  const top = PLOT_TOP, bottom = PLOT_BOTTOM;

  const hasData = values.length > 0;
  let x0 = 0, x1 = 2;
  if (spec.epochs.length > 0) {
    x0 = spec.epochs[0];
    x1 = spec.epochs[spec.epochs.length - 1];
    if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  }
  const xOf = (e: number) =>
    plotLeft + INSET + (e - x0) / (x1 - x0) * (plotRight - plotLeft - 2 * INSET);
  const yOf = (v: number) => bottom - INSET - axis.fraction(v) * (bottom - top - 2 * INSET);

  // Grid first, then frame and ticks, then data, then legend on top.
  for (const t of axis.ticks) {
    const y = yOf(t.value);
    items.push({
      kind: "line",
      x1: plotLeft,
      y1: y,
      x2: plotRight,
      y2: y,
      color: t.label ? GRID : GRID_MINOR,
      width: 1,
    });
  }
  const first = spec.epochs[0], last = spec.epochs[spec.epochs.length - 1];
  const xTicks = spec.epochs.length === 0 ? [] : first === last ? [first] : epochTicks(x0, x1);
  for (const e of xTicks) {
    const x = xOf(e);
    items.push({ kind: "line", x1: x, y1: top, x2: x, y2: bottom, color: GRID, width: 1 });
  }
  items.push({
    kind: "rect",
    x: plotLeft,
    y: top,
    w: plotRight - plotLeft,
    h: bottom - top,
    fill: null,
    fillOpacity: 0,
    stroke: FRAME,
    strokeWidth: 1,
  });
  for (const t of axis.ticks) {
    if (!t.label) continue;
    const y = yOf(t.value);
    items.push({
      kind: "line",
      x1: plotLeft - 5,
      y1: y,
      x2: plotLeft,
      y2: y,
      color: FRAME,
      width: 1,
    });
    items.push({
      kind: "text",
      x: plotLeft - 8,
      y: y + FONT_TICK / 2,
      text: tickText(t.value),
      size: FONT_TICK,
      color: INK,
      anchor: "end",
    });
  }
  for (const e of xTicks) {
    const x = xOf(e);
    items.push({ kind: "line", x1: x, y1: bottom, x2: x, y2: bottom + 5, color: FRAME, width: 1 });
    items.push({
      kind: "text",
      x,
      y: bottom + 10 + FONT_TICK,
      text: formatNumber(e),
      size: FONT_TICK,
      color: INK,
      anchor: "middle",
    });
  }
  items.push({
    kind: "text",
    x: (plotLeft + plotRight) / 2,
    y: bottom + 10 + FONT_TICK + 12 + FONT_LABEL,
    text: "epoch",
    size: FONT_LABEL,
    color: INK,
    anchor: "middle",
  });
  let yTitle = spec.yTitle + (spec.percent ? " %" : "");
  if (axis.log) yTitle += axis.clamped ? " (log scale, 0 at floor)" : " (log scale)";
  items.push({
    kind: "text",
    x: titleX,
    y: (top + bottom) / 2,
    text: yTitle,
    size: FONT_LABEL,
    color: INK,
    anchor: "middle",
    vertical: true,
  });

  if (!hasData) {
    items.push({
      kind: "text",
      x: (plotLeft + plotRight) / 2,
      y: (top + bottom) / 2 + FONT_LABEL / 2,
      text: spec.message,
      size: FONT_LABEL,
      color: MUTED,
      anchor: "middle",
    });
    return;
  }

  const mark = values.length <= MAX_MARKED_POINTS;
  for (const s of spec.series) {
    const runs: [number, number][][] = [];
    let run: [number, number][] = [];
    s.values.forEach((v, i) => {
      if (Number.isFinite(v)) {
        run.push([round2(xOf(spec.epochs[i])), round2(yOf(v))]);
      } else if (run.length > 0) {
        runs.push(run);
        run = [];
      }
    });
    if (run.length > 0) runs.push(run);
    items.push({ kind: "path", runs, color: s.color, width: LINE_WIDTH, series: s.id });
    for (const r of runs) {
      if (!mark && r.length > 1) continue;
      for (const [cx, cy] of r) {
        items.push({
          kind: "circle",
          cx,
          cy,
          r: MARKER_RADIUS,
          fill: s.color,
          stroke: "#ffffff",
          strokeWidth: 1,
        });
      }
    }
  }

  const entries: LegendEntry[] = spec.series.map((s) => ({
    label: s.label,
    color: s.color,
    ring: false,
  }));
  if (spec.best) {
    const cx = round2(xOf(spec.best.epoch)), cy = round2(yOf(spec.best.value));
    items.push({
      kind: "circle",
      cx,
      cy,
      r: 7,
      fill: null,
      stroke: PLOT_COLORS.best,
      strokeWidth: 2,
    });
    const value = formatPercent(spec.best.value), epoch = formatNumber(spec.best.epoch);
    // The longest wording that fits on the row above the plot.
    const wordings = [
      `best ${value} (epoch ${epoch})`,
      `best ${value} (ep. ${epoch})`,
      `best ${value}`,
    ];
    const others = legendWidth(entries);
    const room = plotRight - legendLeft;
    const label = wordings.find((w) =>
      others + ENTRY_GAP + legendWidth([{ label: w, color: "", ring: true }]) <= room
    ) ?? wordings[2];
    entries.push({ label, color: PLOT_COLORS.best, ring: true });
  }
  legend(items, entries, legendLeft, top - 14);
}

interface LegendEntry {
  label: string;
  color: string;
  ring: boolean;
}

const SWATCH = 24;
const SWATCH_GAP = 6;
const ENTRY_GAP = 18;

function legendWidth(entries: readonly LegendEntry[]): number {
  let w = 0;
  for (const e of entries) {
    w += (w > 0 ? ENTRY_GAP : 0) + SWATCH + SWATCH_GAP + measure(e.label, FONT_LEGEND);
  }
  return w;
}

/** One row of legend entries above the plot area, where it can never hide data. */
function legend(
  items: Item[],
  entries: readonly LegendEntry[],
  left: number,
  baseline: number,
): void {
  let x = left;
  const cy = baseline - FONT_LEGEND / 2;
  for (const e of entries) {
    if (e.ring) {
      items.push({
        kind: "circle",
        cx: x + SWATCH / 2,
        cy,
        r: 6,
        fill: null,
        stroke: e.color,
        strokeWidth: 2,
      });
    } else {
      items.push({
        kind: "line",
        x1: x,
        y1: cy,
        x2: x + SWATCH,
        y2: cy,
        color: e.color,
        width: LINE_WIDTH,
      });
    }
    x += SWATCH + SWATCH_GAP;
    items.push({
      kind: "text",
      x,
      y: baseline,
      text: e.label,
      size: FONT_LEGEND,
      color: INK,
      anchor: "start",
    });
    x += measure(e.label, FONT_LEGEND) + ENTRY_GAP;
  }
}

// ---------------------------------------------------------------------------------------------
// Axes

interface Tick {
  value: number;
  label: boolean;
}

interface YAxis {
  log: boolean;
  /** Some values at or below zero were put on the floor of a log axis. */
  clamped: boolean;
  ticks: Tick[];
  /** Position of a value in the axis range, 0 at the bottom, 1 at the top. */
  fraction(value: number): number;
}

const NICE = [1, 2, 5];

/** A log axis when the positive values span a decade or more, otherwise a linear one. */
function yAxis(values: readonly number[], percent: boolean): YAxis {
  if (values.length === 0) return linearAxis(0, percent ? 100 : 1);
  let min = Infinity, max = -Infinity, minPositive = Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
    if (v > 0 && v < minPositive) minPositive = v;
  }
  if (max > 0 && max / minPositive >= 10) return logAxis(minPositive, max, min <= 0);
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    return linearAxis(min >= 0 ? Math.max(0, min - pad) : min - pad, max + pad);
  }
  return linearAxis(min, max);
}

function linearAxis(min: number, max: number): YAxis {
  const step = niceStep((max - min) / 5);
  const lo = Math.floor(min / step + 1e-9) * step;
  const hi = Math.ceil(max / step - 1e-9) * step;
  const ticks: Tick[] = [];
  for (let k = Math.round(lo / step); k * step <= hi + step * 1e-9; k++) {
    ticks.push({ value: cleanFloat(k * step), label: true });
  }
  return {
    log: false,
    clamped: false,
    ticks,
    fraction: (v) => (v - lo) / (hi - lo),
  };
}

function logAxis(minPositive: number, max: number, clamped: boolean): YAxis {
  // Bounds on the 1-2-5 ladder so the axis ends on labelled values.
  // With values clamped to the floor, the floor sits one rung below the smallest positive value
  // so those points do not read as that value.
  const lo = clamped
    ? ladderBelow(ladderBelow(minPositive) * (1 - 1e-9))
    : ladderBelow(minPositive);
  const hi = ladderAbove(max);
  const l0 = Math.log10(lo), span = Math.log10(hi) - l0;
  const ticks: Tick[] = [];
  const every = Math.max(1, Math.ceil(span / 6));
  for (let d = Math.floor(l0); d <= Math.ceil(Math.log10(hi)); d++) {
    for (let m = 1; m <= 9; m++) {
      const v = cleanFloat(m * 10 ** d);
      if (v < lo * (1 - 1e-9) || v > hi * (1 + 1e-9)) continue;
      const label = m === 1 ? d % every === 0 : span < 2.5 && (m === 2 || m === 5);
      // Minor lines only while they stay apart.
      if (label || span <= 6) ticks.push({ value: v, label });
    }
  }
  return {
    log: true,
    clamped,
    ticks,
    fraction: (v) => v <= 0 ? 0 : Math.max(0, (Math.log10(v) - l0) / span),
  };
}

function ladderBelow(v: number): number {
  const d = Math.floor(Math.log10(v));
  for (let i = NICE.length - 1; i >= 0; i--) {
    const c = cleanFloat(NICE[i] * 10 ** d);
    if (c <= v) return c;
  }
  return cleanFloat(5 * 10 ** (d - 1));
}

function ladderAbove(v: number): number {
  const d = Math.floor(Math.log10(v));
  for (const m of [...NICE, 10]) {
    const c = cleanFloat(m * 10 ** d);
    if (c >= v) return c;
  }
  return cleanFloat(2 * 10 ** (d + 1));
}

function niceStep(rough: number): number {
  if (!(rough > 0) || !Number.isFinite(rough)) return 1;
  const d = Math.floor(Math.log10(rough));
  for (const m of [1, 2, 5, 10]) {
    const c = m * 10 ** d;
    if (c >= rough * (1 - 1e-9)) return cleanFloat(c);
  }
  return cleanFloat(10 ** (d + 1));
}

/** Integer epoch ticks on a 1-2-5 step, at most about ten. */
function epochTicks(lo: number, hi: number): number[] {
  const step = Math.max(1, niceStep((hi - lo) / 10));
  const ticks = [];
  for (let e = Math.ceil(lo / step) * step; e <= hi; e += step) ticks.push(cleanFloat(e));
  return ticks;
}

// ---------------------------------------------------------------------------------------------
// Text and numbers

/** Drops characters XML cannot carry (controls, lone surrogates) and folds whitespace. */
function cleanText(text: string): string {
  return String(text)
    // deno-lint-ignore no-control-regex
    .replace(/[\u0000-\u001f\u007f\ufffe\uffff]/g, " ")
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "?")
    .replace(/\s+/g, " ")
    .trim();
}

/** Width of text in layout units, by the bitmap font's metrics. */
function measure(text: string, size: number): number {
  return textWidth(text) * size / CAP_HEIGHT;
}

/** Shortens text with "..." so it fits `width` layout units. */
function fitText(text: string, size: number, width: number): string {
  if (measure(text, size) <= width) return text;
  const chars = Array.from(text);
  while (chars.length > 0 && measure(chars.join("") + "...", size) > width) chars.pop();
  return chars.join("").trimEnd() + "...";
}

/** Removes binary floating-point noise (0.30000000000000004 → 0.3). */
function cleanFloat(v: number): number {
  return Number(v.toPrecision(12));
}

function formatNumber(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) {
    return Number(v.toPrecision(6)).toExponential().replace("e+", "e");
  }
  return String(Number(v.toPrecision(6)));
}

function formatPercent(v: number): string {
  if (v === 0) return "0%";
  const digits = Math.abs(v) >= 10 ? 1 : Math.abs(v) >= 1 ? 2 : 3;
  return (Math.abs(v) >= 1 ? v.toFixed(digits) : v.toPrecision(digits)) + "%";
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600), m = Math.floor(total / 60) % 60, s = total % 60;
  return h > 0 ? `${h}h ${m}m ${s}s` : `${m}m ${s}s`;
}

function round2(v: number): number {
  const r = Math.round(v * 100) / 100;
  return r === 0 ? 0 : r;
}

// ---------------------------------------------------------------------------------------------
// SVG

function fmt(v: number): string {
  return String(round2(v));
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/** Sans-serif capitals are about 0.72 em tall; the bitmap font's size is its cap height. */
function fontSize(size: number): string {
  return fmt(size / 0.72);
}

function sceneToSvg(scene: Scene): string {
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${PLOT_WIDTH}" height="${PLOT_HEIGHT}" ` +
    `viewBox="0 0 ${PLOT_WIDTH} ${PLOT_HEIGHT}" font-family="sans-serif">`,
    `<title>${escapeXml(scene.title)}</title>`,
  ];
  for (const item of scene.items) {
    switch (item.kind) {
      case "rect": {
        const fill = item.fill === null
          ? `fill="none"`
          : `fill="${item.fill}"${
            item.fillOpacity < 1 ? ` fill-opacity="${item.fillOpacity}"` : ""
          }`;
        const stroke = item.stroke === null
          ? ""
          : ` stroke="${item.stroke}" stroke-width="${fmt(item.strokeWidth)}"`;
        // Offsets of half a unit put 1-unit strokes on pixel centres, as the rasteriser does.
        const o = item.stroke === null ? 0 : 0.5;
        out.push(
          `<rect x="${fmt(item.x + o)}" y="${fmt(item.y + o)}" width="${
            fmt(item.w - 2 * o)
          }" height="${fmt(item.h - 2 * o)}" ${fill}${stroke}/>`,
        );
        break;
      }
      case "line": {
        const dash = item.dash ? ` stroke-dasharray="${item.dash[0]} ${item.dash[1]}"` : "";
        const [x1, y1, x2, y2] = alignLine(item);
        out.push(
          `<line x1="${fmt(x1)}" y1="${fmt(y1)}" x2="${fmt(x2)}" y2="${
            fmt(y2)
          }" stroke="${item.color}" stroke-width="${fmt(item.width)}"${dash}/>`,
        );
        break;
      }
      case "path": {
        const d = item.runs.map((run) =>
          run.map(([x, y], i) => `${i === 0 ? "M" : "L"}${fmt(x)} ${fmt(y)}`).join(" ")
        ).join(" ");
        out.push(
          `<path data-series="${item.series}" d="${d}" fill="none" stroke="${item.color}" stroke-width="${
            fmt(item.width)
          }" stroke-linejoin="round" stroke-linecap="round"/>`,
        );
        break;
      }
      case "circle": {
        const fill = item.fill === null ? "none" : item.fill;
        const stroke = item.stroke === null
          ? ""
          : ` stroke="${item.stroke}" stroke-width="${fmt(item.strokeWidth)}"`;
        out.push(
          `<circle cx="${fmt(item.cx)}" cy="${fmt(item.cy)}" r="${
            fmt(item.r)
          }" fill="${fill}"${stroke}/>`,
        );
        break;
      }
      case "text": {
        const anchor = item.anchor === "start" ? "" : ` text-anchor="${item.anchor}"`;
        const weight = item.bold ? ` font-weight="bold"` : "";
        const rotate = item.vertical
          ? ` transform="rotate(-90 ${fmt(item.x)} ${fmt(item.y)})"`
          : "";
        out.push(
          `<text x="${fmt(item.x)}" y="${fmt(item.y)}" font-size="${
            fontSize(item.size)
          }" fill="${item.color}"${anchor}${weight}${rotate}>${escapeXml(item.text)}</text>`,
        );
        break;
      }
    }
  }
  out.push(`</svg>`, "");
  return out.join("\n");
}

/** Axis-parallel lines of odd width moved onto pixel centres so they render crisp. */
function alignLine(item: LineItem): [number, number, number, number] {
  const odd = Math.round(item.width) % 2 === 1;
  if (item.y1 === item.y2 && odd) {
    const y = Math.floor(item.y1) + 0.5;
    return [item.x1, y, item.x2, y];
  }
  if (item.x1 === item.x2 && odd) {
    const x = Math.floor(item.x1) + 0.5;
    return [x, item.y1, x, item.y2];
  }
  return [item.x1, item.y1, item.x2, item.y2];
}

// ---------------------------------------------------------------------------------------------
// Raster

function parseColor(color: string): [number, number, number] {
  const n = parseInt(color.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

class Canvas {
  readonly data: Uint8Array;
  constructor(readonly width: number, readonly height: number) {
    this.data = new Uint8Array(width * height * 4).fill(255);
  }

  /** Lays `color` at coverage `alpha` (0..1) over pixel (x, y). */
  blend(x: number, y: number, rgb: readonly number[], alpha: number): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height || !(alpha > 0)) return;
    const i = (y * this.width + x) * 4, d = this.data;
    if (alpha >= 1) {
      d[i] = rgb[0];
      d[i + 1] = rgb[1];
      d[i + 2] = rgb[2];
    } else {
      d[i] = Math.round(d[i] + (rgb[0] - d[i]) * alpha);
      d[i + 1] = Math.round(d[i + 1] + (rgb[1] - d[i + 1]) * alpha);
      d[i + 2] = Math.round(d[i + 2] + (rgb[2] - d[i + 2]) * alpha);
    }
  }

  /** Fills the rectangle [x0, x1) × [y0, y1) in device pixels, edges weighted by coverage. */
  fillRect(
    x0: number,
    y0: number,
    x1: number,
    y1: number,
    rgb: readonly number[],
    alpha = 1,
  ): void {
    const ya = Math.max(0, Math.floor(y0)), yb = Math.min(this.height, Math.ceil(y1));
    const xa = Math.max(0, Math.floor(x0)), xb = Math.min(this.width, Math.ceil(x1));
    for (let y = ya; y < yb; y++) {
      const cy = Math.min(y1, y + 1) - Math.max(y0, y);
      for (let x = xa; x < xb; x++) {
        const cx = Math.min(x1, x + 1) - Math.max(x0, x);
        this.blend(x, y, rgb, cx * cy * alpha);
      }
    }
  }

  /**
   * Strokes a polyline with round joins and caps. Coverage is the maximum over segments, laid
   * down once, so joints are not darkened by overlapping segments.
   */
  strokePolyline(points: readonly number[], width: number, rgb: readonly number[]): void {
    const half = width / 2, reach = half + 1;
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (let i = 0; i < points.length; i += 2) {
      minX = Math.min(minX, points[i]);
      maxX = Math.max(maxX, points[i]);
      minY = Math.min(minY, points[i + 1]);
      maxY = Math.max(maxY, points[i + 1]);
    }
    const bx0 = Math.max(0, Math.floor(minX - reach)), by0 = Math.max(0, Math.floor(minY - reach));
    const bx1 = Math.min(this.width, Math.ceil(maxX + reach)),
      by1 = Math.min(this.height, Math.ceil(maxY + reach));
    if (bx1 <= bx0 || by1 <= by0) return;
    const bw = bx1 - bx0;
    const cover = new Float32Array(bw * (by1 - by0));
    const segments = Math.max(1, points.length / 2 - 1);
    for (let s = 0; s < segments; s++) {
      const ax = points[2 * s], ay = points[2 * s + 1];
      const last = points.length >= 4 ? 2 * s + 2 : 2 * s;
      const cx = points[last], cy = points[last + 1];
      const dx = cx - ax, dy = cy - ay, len2 = dx * dx + dy * dy;
      const x0 = Math.max(bx0, Math.floor(Math.min(ax, cx) - reach));
      const x1 = Math.min(bx1, Math.ceil(Math.max(ax, cx) + reach));
      const y0 = Math.max(by0, Math.floor(Math.min(ay, cy) - reach));
      const y1 = Math.min(by1, Math.ceil(Math.max(ay, cy) + reach));
      for (let y = y0; y < y1; y++) {
        const py = y + 0.5;
        for (let x = x0; x < x1; x++) {
          const px = x + 0.5;
          let t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
          t = t < 0 ? 0 : t > 1 ? 1 : t;
          const ex = px - (ax + t * dx), ey = py - (ay + t * dy);
          const c = half + 0.5 - Math.sqrt(ex * ex + ey * ey);
          if (c <= 0) continue;
          const k = (y - by0) * bw + (x - bx0);
          const v = c > 1 ? 1 : c;
          if (v > cover[k]) cover[k] = v;
        }
      }
    }
    for (let y = by0; y < by1; y++) {
      for (let x = bx0; x < bx1; x++) {
        const v = cover[(y - by0) * bw + (x - bx0)];
        if (v > 0) this.blend(x, y, rgb, v);
      }
    }
  }

  /** A disc, or with `ringWidth` a ring centred on radius `r`. */
  circle(cx: number, cy: number, r: number, rgb: readonly number[], ringWidth = 0): void {
    const reach = r + ringWidth / 2 + 1;
    const y0 = Math.floor(cy - reach), y1 = Math.ceil(cy + reach);
    const x0 = Math.floor(cx - reach), x1 = Math.ceil(cx + reach);
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
        const c = ringWidth > 0 ? ringWidth / 2 + 0.5 - Math.abs(d - r) : r + 0.5 - d;
        if (c > 0) this.blend(x, y, rgb, c > 1 ? 1 : c);
      }
    }
  }
}

function rasterize(scene: Scene, scale: number): RgbaImage {
  const width = Math.max(1, Math.round(PLOT_WIDTH * scale));
  const height = Math.max(1, Math.round(PLOT_HEIGHT * scale));
  const canvas = new Canvas(width, height);
  /** Device extent of an axis-parallel stroke of `w` units centred on `c`, snapped to pixels. */
  const snap = (c: number, w: number): [number, number] => {
    const px = Math.max(1, Math.round(w * scale));
    const start = Math.round(c * scale - px / 2 + (px % 2 === 1 ? 0.5 : 0) - 1e-9);
    return [start, start + px];
  };
  for (const item of scene.items) {
    switch (item.kind) {
      case "rect": {
        if (item.fill !== null) {
          canvas.fillRect(
            item.x * scale,
            item.y * scale,
            (item.x + item.w) * scale,
            (item.y + item.h) * scale,
            parseColor(item.fill),
            item.fillOpacity,
          );
        }
        if (item.stroke !== null) {
          const rgb = parseColor(item.stroke);
          const [l0, l1] = snap(item.x + item.strokeWidth / 2, item.strokeWidth);
          const [r0, r1] = snap(item.x + item.w - item.strokeWidth / 2, item.strokeWidth);
          const [t0, t1] = snap(item.y + item.strokeWidth / 2, item.strokeWidth);
          const [b0, b1] = snap(item.y + item.h - item.strokeWidth / 2, item.strokeWidth);
          canvas.fillRect(l0, t0, r1, t1, rgb);
          canvas.fillRect(l0, b0, r1, b1, rgb);
          canvas.fillRect(l0, t1, l1, b0, rgb);
          canvas.fillRect(r0, t1, r1, b0, rgb);
        }
        break;
      }
      case "line": {
        const rgb = parseColor(item.color);
        const segments: [number, number, number, number][] = [];
        if (item.dash) {
          const len = Math.hypot(item.x2 - item.x1, item.y2 - item.y1);
          const [on, off] = item.dash;
          for (let s = 0; s < len; s += on + off) {
            const e = Math.min(len, s + on);
            const f0 = s / len, f1 = e / len;
            segments.push([
              item.x1 + (item.x2 - item.x1) * f0,
              item.y1 + (item.y2 - item.y1) * f0,
              item.x1 + (item.x2 - item.x1) * f1,
              item.y1 + (item.y2 - item.y1) * f1,
            ]);
          }
        } else {
          segments.push([item.x1, item.y1, item.x2, item.y2]);
        }
        for (const [x1, y1, x2, y2] of segments) {
          if (y1 === y2) {
            const [a, b] = snap(y1, item.width);
            canvas.fillRect(
              Math.round(Math.min(x1, x2) * scale),
              a,
              Math.round(Math.max(x1, x2) * scale),
              b,
              rgb,
            );
          } else if (x1 === x2) {
            const [a, b] = snap(x1, item.width);
            canvas.fillRect(
              a,
              Math.round(Math.min(y1, y2) * scale),
              b,
              Math.round(Math.max(y1, y2) * scale),
              rgb,
            );
          } else {
            canvas.strokePolyline(
              [x1 * scale, y1 * scale, x2 * scale, y2 * scale],
              item.width * scale,
              rgb,
            );
          }
        }
        break;
      }
      case "path": {
        const rgb = parseColor(item.color);
        for (const run of item.runs) {
          // A lone point would draw as a dot the size of the stroke; its marker shows it instead.
          if (run.length < 2) continue;
          canvas.strokePolyline(
            run.flatMap(([x, y]) => [x * scale, y * scale]),
            item.width * scale,
            rgb,
          );
        }
        break;
      }
      case "circle": {
        const cx = item.cx * scale,
          cy = item.cy * scale,
          r = item.r * scale,
          sw = item.strokeWidth * scale;
        if (item.fill !== null) {
          if (item.stroke !== null) canvas.circle(cx, cy, r + sw / 2, parseColor(item.stroke));
          canvas.circle(cx, cy, item.stroke !== null ? r - sw / 2 : r, parseColor(item.fill));
        } else if (item.stroke !== null) {
          canvas.circle(cx, cy, r, parseColor(item.stroke), sw);
        }
        break;
      }
      case "text":
        drawText(canvas, item, scale);
        break;
    }
  }
  return { width, height, data: canvas.data };
}

function drawText(canvas: Canvas, item: TextItem, scale: number): void {
  const px = Math.max(1, Math.round(item.size * scale / CAP_HEIGHT));
  const text = Array.from(item.text, (c) => hasGlyph(c) ? c : "?").join("");
  const length = textWidth(text) * px;
  const shift = item.anchor === "middle"
    ? Math.floor(length / 2)
    : item.anchor === "end"
    ? length
    : 0;
  const ox = Math.round(item.x * scale), oy = Math.round(item.y * scale);
  const rgb = parseColor(item.color);
  const bold = item.bold ? 1 : 0;
  forEachTextPixel(text, (gx, gy) => {
    if (item.vertical) {
      const x = ox - CAP_HEIGHT * px + gy * px;
      const y = oy + shift - (gx + 1) * px;
      canvas.fillRect(x, y - bold, x + px, y + px, rgb);
    } else {
      const x = ox - shift + gx * px;
      const y = oy - CAP_HEIGHT * px + gy * px;
      canvas.fillRect(x, y, x + px + bold, y + px, rgb);
    }
  });
}

// imagescript's PNG module is CommonJS without type declarations; this describes the part used.
interface PngEncoder {
  encode(
    data: Uint8Array,
    options: { width: number; height: number; channels: number; depth: number; level: number },
  ): Uint8Array;
}

async function pngEncoder(): Promise<PngEncoder> {
  const mod = await import("imagescript/png/node.js");
  return mod.default as unknown as PngEncoder;
}
