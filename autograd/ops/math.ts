/**
 * Elementwise math beyond the arithmetic primitives: `erf`, `log1p`, `expm1`, `sin`, `cos`
 * (primitives), `sign`, `floor`, `round` (primitives with zero gradient, as PyTorch), and the
 * composites `rsqrt`, `reciprocal`, `square` and `clamp`.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { div } from "./arith.ts";
import { gt, lt, where } from "./compare.ts";
import { applyOp } from "./op.ts";
import {
  cosOp,
  erfOp,
  expm1Op,
  floorOp,
  log1pOp,
  none,
  pow,
  roundOp,
  signOp,
  sinOp,
} from "./unary.ts";

/** The error function (2/√π)∫₀ˣ e^(−t²) dt elementwise, accurate to float32 rounding. */
export function erf(x: Tensor): Tensor {
  return applyOp(erfOp, [x], none);
}

/** ln(1 + x) elementwise, accurate for x near 0. */
export function log1p(x: Tensor): Tensor {
  return applyOp(log1pOp, [x], none);
}

/** e^x − 1 elementwise, accurate for x near 0. */
export function expm1(x: Tensor): Tensor {
  return applyOp(expm1Op, [x], none);
}

/** Sine elementwise (radians). */
export function sin(x: Tensor): Tensor {
  return applyOp(sinOp, [x], none);
}

/** Cosine elementwise (radians). */
export function cos(x: Tensor): Tensor {
  return applyOp(cosOp, [x], none);
}

/** −1, 0 or 1 by the sign of each element (NaN stays NaN); the gradient is 0, as in PyTorch. */
export function sign(x: Tensor): Tensor {
  return applyOp(signOp, [x], none);
}

/** ⌊x⌋ elementwise; the gradient is 0, as in PyTorch. */
export function floor(x: Tensor): Tensor {
  return applyOp(floorOp, [x], none);
}

/** The nearest integer, halves to even (2.5 → 2, as PyTorch); the gradient is 0. */
export function round(x: Tensor): Tensor {
  return applyOp(roundOp, [x], none);
}

/** 1/√x elementwise. */
export function rsqrt(x: Tensor): Tensor {
  return pow(x, -0.5);
}

/** 1/x elementwise. */
export function reciprocal(x: Tensor): Tensor {
  return div(1, x);
}

/** x² elementwise. */
export function square(x: Tensor): Tensor {
  return pow(x, 2);
}

/**
 * x limited to [min, max] (either bound may be omitted; a bound may be a tensor that broadcasts).
 * As PyTorch: the gradient is 1 where min ≤ x ≤ max, else 0; NaN stays NaN; where min > max every
 * element becomes max.
 */
export function clamp(x: Tensor, min?: number | Tensor, max?: number | Tensor): Tensor {
  if (min === undefined && max === undefined) {
    throw new RangeError("clamp: give min, max or both");
  }
  const low = min === undefined ? x : where(lt(x, min), min, x);
  return max === undefined ? low : where(gt(low, max), max, low);
}
