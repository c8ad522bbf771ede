/**
 * The training plot of the digit pad: loss (left axis) and test error (right axis) against the
 * step, drawn on a canvas as the worker reports them.
 *
 * @module
 */

/// <reference lib="dom" />

/** A series of (step, value) points. */
export type Series = [number, number][];

/** What {@linkcode drawCurves} draws. */
export interface Curves {
  /** Training loss by step. */
  loss: Series;
  /** Test error (a fraction) by step. */
  error: Series;
  /** The last step of the run, the x axis' end. */
  steps: number;
}

const LOSS_COLOUR = "#0b5cad";
const ERROR_COLOUR = "#b3261e";

/** A round number at or above `x` (1, 2 or 5 times a power of ten). */
function niceCeil(x: number): number {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

/** Draws both series with their axes; an empty plot says that training has not started. */
export function drawCurves(canvas: HTMLCanvasElement, curves: Curves): void {
  const ctx = canvas.getContext("2d")!;
  const { width, height } = canvas;
  const style = getComputedStyle(canvas);
  const fg = style.color;
  ctx.clearRect(0, 0, width, height);
  const left = 52, right = 58, top = 16, bottom = 34;
  const w = width - left - right, h = height - top - bottom;
  const maxLoss = niceCeil(Math.max(0.1, ...curves.loss.map(([, v]) => v)));
  const maxError = niceCeil(Math.max(0.01, ...curves.error.map(([, v]) => v)));
  const steps = Math.max(1, curves.steps);
  const x = (s: number) => left + (s / steps) * w;

  ctx.font = "12px system-ui, sans-serif";
  ctx.lineWidth = 1;
  ctx.strokeStyle = fg;
  ctx.globalAlpha = 0.25;
  for (let i = 0; i <= 4; i++) {
    const y = top + (h * i) / 4;
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(left + w, y);
    ctx.stroke();
  }
  ctx.globalAlpha = 1;
  ctx.fillStyle = fg;
  ctx.textAlign = "center";
  for (let i = 0; i <= 4; i++) {
    ctx.fillText(String(Math.round((steps * i) / 4)), left + (w * i) / 4, height - bottom + 16);
  }
  ctx.fillText("step", left + w / 2, height - 4);
  for (let i = 0; i <= 4; i++) {
    const y = top + (h * i) / 4 + 4;
    ctx.textAlign = "right";
    ctx.fillStyle = LOSS_COLOUR;
    ctx.fillText((maxLoss * (1 - i / 4)).toFixed(maxLoss >= 4 ? 1 : 2), left - 6, y);
    ctx.textAlign = "left";
    ctx.fillStyle = ERROR_COLOUR;
    const percent = 100 * maxError * (1 - i / 4);
    ctx.fillText(`${percent.toFixed(percent >= 10 || percent === 0 ? 0 : 1)}%`, left + w + 6, y);
  }
  ctx.textAlign = "left";
  ctx.fillStyle = LOSS_COLOUR;
  ctx.fillText("training loss", left + 8, top + 14);
  ctx.fillStyle = ERROR_COLOUR;
  ctx.fillText("test error", left + 108, top + 14);

  const line = (series: Series, max: number, colour: string) => {
    if (series.length === 0) return;
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    series.forEach(([s, v], i) => {
      const y = top + h * (1 - Math.min(v, max) / max);
      if (i === 0) ctx.moveTo(x(s), y);
      else ctx.lineTo(x(s), y);
    });
    ctx.stroke();
    const [s, v] = series[series.length - 1];
    ctx.beginPath();
    ctx.arc(x(s), top + h * (1 - Math.min(v, max) / max), 3, 0, 2 * Math.PI);
    ctx.fill();
  };
  line(curves.loss, maxLoss, LOSS_COLOUR);
  line(curves.error, maxError, ERROR_COLOUR);
}
