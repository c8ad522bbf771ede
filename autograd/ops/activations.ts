/**
 * Activation functions beyond the primitive ones (relu, leakyRelu, sigmoid, tanh): `gelu` (a fused
 * primitive, exact or tanh-approximated), and the composites `silu`, `softplus`, `elu`, `hardtanh`
 * and `logSigmoid`, with PyTorch's definitions and defaults. The composites clamp the arguments of
 * their exponentials, so no branch that `where` discards can overflow and poison the gradient
 * with 0·∞.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { div, minimum, mul } from "./arith.ts";
import { ge, gt, le, where } from "./compare.ts";
import { applyOp } from "./op.ts";
import { expm1Op, geluOp, log1pOp, none, sigmoid } from "./unary.ts";
import { exp, neg } from "./unary.ts";

/** Options of {@linkcode gelu}. */
export interface GeluOptions {
  /**
   * "none" (default): the exact x·Φ(x), Φ the standard normal CDF computed with erf to float32
   * accuracy; "tanh": x/2·(1 + tanh(√(2/π)(x + 0.044715x³))), as PyTorch's `approximate`.
   */
  approximate?: "none" | "tanh";
}

/**
 * The Gaussian error linear unit x·Φ(x) (PyTorch's `gelu`). One fused pass each way: the forward
 * kernel computes x·Φ(x) per element, the backward kernel Φ(x) + x·φ(x); under `createGraph` the
 * derivative is built from differentiable ops instead, so second derivatives work.
 */
export function gelu(x: Tensor, options: GeluOptions = {}): Tensor {
  const approximate = options.approximate ?? "none";
  if (approximate !== "none" && approximate !== "tanh") {
    throw new RangeError(`gelu: approximate must be "none" or "tanh", got ${approximate}`);
  }
  return applyOp(geluOp, [x], { param: approximate === "tanh" ? 1 : 0 });
}

/** x·σ(x), the sigmoid linear unit (also called swish). */
export function silu(x: Tensor): Tensor {
  return mul(x, sigmoid(x));
}

/**
 * log(1 + e^(β·x))/β, and x itself where β·x > `threshold` (PyTorch's `softplus`, defaults β = 1,
 * threshold = 20). Computed with log1p, so it keeps its relative accuracy for very negative x.
 */
export function softplus(x: Tensor, beta = 1, threshold = 20): Tensor {
  const bx = beta === 1 ? x : mul(x, beta);
  const lp = applyOp(log1pOp, [exp(minimum(bx, threshold))], none);
  return where(gt(bx, threshold), x, beta === 1 ? lp : div(lp, beta));
}

/** x for x > 0, α·(e^x − 1) otherwise (PyTorch's `elu`, default α = 1). */
export function elu(x: Tensor, alpha = 1): Tensor {
  const negative = mul(applyOp(expm1Op, [minimum(x, 0)], none), alpha);
  return where(gt(x, 0), x, negative);
}

/**
 * x clamped to [minVal, maxVal] (PyTorch's `hardtanh`, defaults −1 and 1). As in PyTorch the
 * gradient is 1 strictly inside and 0 at the bounds (`clamp`'s is 1 at the bounds too).
 */
export function hardtanh(x: Tensor, minVal = -1, maxVal = 1): Tensor {
  if (!(minVal <= maxVal)) {
    throw new RangeError(`hardtanh: minVal ${minVal} must not exceed maxVal ${maxVal}`);
  }
  return where(le(x, minVal), minVal, where(ge(x, maxVal), maxVal, x));
}

/** log σ(x) = −softplus(−x), computed stably for large |x| (PyTorch's `logsigmoid`). */
export function logSigmoid(x: Tensor): Tensor {
  return neg(softplus(neg(x)));
}
