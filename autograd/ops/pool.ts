/**
 * Average pooling, fixed-window (`avgPool2d`) and adaptive (`adaptiveAvgPool2d`), as composites.
 * Every average pool PyTorch defines is separable: the window of an output (i, j) is a rectangle
 * of rows × columns, and its divisor a product of a row count and a column count. So the pool is
 * Y = P_h · X · P_wᵀ for each [H, W] plane, with two constant pooling matrices: two batched
 * matmuls, exact, differentiable to any order, and free of per-window loops. Cost grows as H²·W
 * rather than H·W·k², fine for the small maps pooling is used on (a global pool is one product).
 *
 * @module
 */

import { expectDType } from "../dtype.ts";
import { formatShape } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import type { Pair } from "./conv.ts";
import { matmul } from "./matmul.ts";
import { reshape, transpose } from "./view.ts";

/** Options of {@linkcode avgPool2d}. */
export interface AvgPool2dOptions {
  /** Step between windows (default: the kernel size). */
  stride?: Pair;
  /** Implicit zero padding on each side (default 0; at most half the window). */
  padding?: Pair;
  /** Use ⌈⌉ instead of ⌊⌋ for the output size (default false). */
  ceilMode?: boolean;
  /** Count padded zeros in the divisor (default true, as PyTorch). */
  countIncludePad?: boolean;
  /** Divide every window's sum by this instead. */
  divisorOverride?: number;
}

function pair(v: Pair, name: string, op: string, min: number): [number, number] {
  const p: [number, number] = typeof v === "number" ? [v, v] : [v[0], v[1]];
  if (!p.every((x) => Number.isInteger(x) && x >= min)) {
    throw new RangeError(`${op}: ${name} must be integers >= ${min}, got ${v}`);
  }
  return p;
}

/** A constant [out, in] matrix with 1/divisor(o) on each output's window rows [start(o), end(o)). */
function poolMatrix(
  out: number,
  size: number,
  window: (o: number) => [number, number, number],
): Tensor {
  const data = new Float32Array(out * size);
  for (let o = 0; o < out; o++) {
    const [start, end, divisor] = window(o);
    for (let i = Math.max(start, 0); i < Math.min(end, size); i++) data[o * size + i] = 1 / divisor;
  }
  return new Tensor(data, [out, size]);
}

/** Y = rows · X · colsᵀ for every [H, W] plane of x [..., H, W]. */
function separablePool(x: Tensor, rows: Tensor, cols: Tensor): Tensor {
  const [h, w] = x.shape.slice(-2);
  const lead = x.shape.slice(0, -2);
  const planes = reshape(x, [-1, h, w]);
  const y = matmul(matmul(rows, planes), transpose(cols, 0, 1));
  return reshape(y, [...lead, rows.shape[0], cols.shape[0]]);
}

function checkInput(op: string, x: Tensor): void {
  expectDType(op, [x], ["float32"]);
  if (x.ndim !== 3 && x.ndim !== 4) {
    throw new RangeError(
      `${op}: expected input [N, C, H, W] or [C, H, W], got ${formatShape(x.shape)}`,
    );
  }
}

/**
 * Average pooling of x [N, C, H, W] (or [C, H, W]) over `kernelSize` windows (PyTorch's
 * `F.avg_pool2d`, same output sizes and divisors, `ceilMode` and `countIncludePad` included).
 */
export function avgPool2d(x: Tensor, kernelSize: Pair, options: AvgPool2dOptions = {}): Tensor {
  const op = "avgPool2d";
  checkInput(op, x);
  const kernel = pair(kernelSize, "kernelSize", op, 1);
  const stride = pair(options.stride ?? kernel, "stride", op, 1);
  const padding = pair(options.padding ?? 0, "padding", op, 0);
  if (padding[0] * 2 > kernel[0] || padding[1] * 2 > kernel[1]) {
    throw new RangeError(
      `${op}: padding ${padding.join("×")} must be at most half the window ${kernel.join("×")}`,
    );
  }
  const divisorOverride = options.divisorOverride;
  if (divisorOverride !== undefined && !(divisorOverride > 0)) {
    throw new RangeError(`${op}: divisorOverride must be positive, got ${divisorOverride}`);
  }
  const includePad = options.countIncludePad ?? true;
  const [h, w] = x.shape.slice(-2);
  const axis = (size: number, k: number, s: number, p: number, first: boolean): Tensor => {
    let out = (options.ceilMode ? Math.ceil : Math.floor)((size + 2 * p - k) / s) + 1;
    // A last window that would start in the right padding is dropped (PyTorch's rule).
    if (options.ceilMode && (out - 1) * s >= size + p) out--;
    if (out < 1) {
      throw new RangeError(
        `${op}: a ${kernel.join("×")} window with padding ${padding.join("×")} does not fit input ${
          formatShape(x.shape)
        }`,
      );
    }
    return poolMatrix(out, size, (o) => {
      const start = o * s - p;
      const end = Math.min(start + k, size + p);
      // The divisor of a window is rows × columns: the override goes on one axis only.
      const count = includePad ? end - start : Math.min(end, size) - Math.max(start, 0);
      const divisor = divisorOverride === undefined ? count : first ? divisorOverride : 1;
      return [start, end, divisor];
    });
  };
  return separablePool(
    x,
    axis(h, kernel[0], stride[0], padding[0], true),
    axis(w, kernel[1], stride[1], padding[1], false),
  );
}

/**
 * Adaptive average pooling of x [N, C, H, W] (or [C, H, W]) to `outputSize` (PyTorch's
 * `F.adaptive_avg_pool2d`): output (i, j) averages rows ⌊i·H/OH⌋ … ⌈(i+1)·H/OH⌉ − 1 and the same
 * for columns. A null size keeps the input's.
 */
export function adaptiveAvgPool2d(
  x: Tensor,
  outputSize: number | readonly [number | null, number | null],
): Tensor {
  const op = "adaptiveAvgPool2d";
  checkInput(op, x);
  const [h, w] = x.shape.slice(-2);
  const requested = typeof outputSize === "number" ? [outputSize, outputSize] : outputSize;
  const [oh, ow] = [requested[0] ?? h, requested[1] ?? w];
  if (![oh, ow].every((d) => Number.isInteger(d) && d >= 1)) {
    throw new RangeError(`${op}: outputSize must be positive integers, got ${outputSize}`);
  }
  const axis = (out: number, size: number) =>
    poolMatrix(out, size, (o) => {
      const start = Math.floor((o * size) / out);
      const end = Math.ceil(((o + 1) * size) / out);
      return [start, end, end - start];
    });
  return separablePool(x, axis(oh, h), axis(ow, w));
}
